"""Claims from the literature, checked against this project's studies.

Each claim is one entry of CLAIMS (literature.py): what its authors found
and where, the study metric that tests it here, the kind of claim, and per
dataset the published study (docs/studies/<name>/, or a budget sweep in
docs/budgets/<name>/) and the two grid points to pair by seed. `check`
(pairing.py) reads the committed files alone (study.csv, study_epochs.csv,
budgets.csv), so every table is rebuilt without training: `tools/claims.py`.
tables.py holds the answer tables (methods, peaks), warmup.py warmup x
length, laws.py the schedule law's optimized schedule against the
hand-made ones.

Our verdicts follow machinery/stats.py: seeds paired (same initial
parameters and data order); each table one family, "better" or "worse"
only where the Holm-adjusted p-value is below 0.05; a claim that two
settings are as good as each other ("matches", "at least as good") only
through an equivalence (or non-inferiority) test with the margin MARGIN
(LM_MARGIN_BITS for the language model), fixed in pairing.py; runs that
diverge or stay at chance counted, not averaged. A study not run yet is
listed as such, never guessed.
"""

# pylint: disable=g-importing-member
from claims.literature import CLAIMS
from claims.literature import findings
from claims.literature import growth
from claims.literature import LM
from claims.literature import markdown
from claims.literature import untestable
from claims.laws import HAND_MADE
from claims.laws import OPTIMIZED_STUDIES
from claims.laws import optimized_table
from claims.laws import TRAINING_LEVEL
from claims.pairing import check
from claims.pairing import Claim
from claims.pairing import claim_cell
from claims.pairing import Comparison
from claims.pairing import config_at_reference_peak
from claims.pairing import COSINE
from claims.pairing import lm_config
from claims.pairing import LM_MARGIN_BITS
from claims.pairing import MARGIN
from claims.tables import best_other_lm_method
from claims.tables import best_other_method
from claims.tables import LM_CONSTANT_PEAK_FACTORS
from claims.tables import LM_COSINE_PEAK_STUDIES
from claims.tables import lm_cosine_peaks_table
from claims.tables import LM_METHODS
from claims.tables import LM_PEAK_FACTORS
from claims.tables import lm_peaks_table
from claims.tables import LM_STUDY
from claims.tables import lm_study_peak
from claims.tables import METHOD_STUDIES
from claims.tables import METHODS
from claims.tables import methods_table
from claims.tables import PEAK_FACTORS
from claims.tables import peak_multiples
from claims.tables import peak_study
from claims.tables import PEAK_STUDY
from claims.tables import peaks_table
from claims.warmup import lm_best_warmups
from claims.warmup import lm_rule_of_thumb_table
from claims.warmup import LM_WARMUP_B2
from claims.warmup import lm_warmup_cells
from claims.warmup import LM_WARMUP_EPOCHS
from claims.warmup import LM_WARMUP_GRID
from claims.warmup import lm_warmup_heatmap
from claims.warmup import lm_warmup_study
from claims.warmup import lm_warmup_table
from claims.warmup import rule_of_thumb_steps
from claims.warmup import WARMUP_STUDIES
from claims.warmup import warmup_table
from claims.warmup import WarmupGrid

__all__ = [
    'CLAIMS',
    'findings',
    'growth',
    'LM',
    'markdown',
    'untestable',
    'HAND_MADE',
    'OPTIMIZED_STUDIES',
    'optimized_table',
    'TRAINING_LEVEL',
    'check',
    'Claim',
    'claim_cell',
    'Comparison',
    'config_at_reference_peak',
    'COSINE',
    'lm_config',
    'LM_MARGIN_BITS',
    'MARGIN',
    'best_other_lm_method',
    'best_other_method',
    'LM_METHODS',
    'LM_CONSTANT_PEAK_FACTORS',
    'LM_COSINE_PEAK_STUDIES',
    'lm_cosine_peaks_table',
    'LM_PEAK_FACTORS',
    'LM_STUDY',
    'LM_WARMUP_B2',
    'LM_WARMUP_EPOCHS',
    'LM_WARMUP_GRID',
    'lm_best_warmups',
    'lm_rule_of_thumb_table',
    'lm_peaks_table',
    'lm_study_peak',
    'lm_warmup_cells',
    'lm_warmup_heatmap',
    'lm_warmup_study',
    'lm_warmup_table',
    'METHOD_STUDIES',
    'METHODS',
    'methods_table',
    'PEAK_FACTORS',
    'peak_multiples',
    'peak_study',
    'PEAK_STUDY',
    'peaks_table',
    'rule_of_thumb_steps',
    'warmup_table',
    'WARMUP_STUDIES',
    'WarmupGrid',
]
