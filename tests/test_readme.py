"""The README's answer section says what the committed data says: every
number it states is in a page generated from the committed study files
(docs/claims.md, each study's study.md, each budget sweep's budgets.md),
and its methods table is the generated one."""

import re

from conftest import PROJECT_DIR

README = PROJECT_DIR / 'README.md'
ANSWER_START = '## The answer so far'
ANSWER_END = '## Read on'
# The numbers a study produces: signed differences (+0.14, −0.63),
# accuracies (99.26%) and p-values (p=0.022, p<0.001).
NUMBER = re.compile(r'[+-]\d+\.\d+|\d+\.\d+%|p[=<]\d\.\d+')


def answer_section() -> str:
  text = README.read_text()
  return text[text.index(ANSWER_START):text.index(ANSWER_END)]


def generated_pages() -> str:
  pages = [PROJECT_DIR / 'docs' / 'claims.md',
           *sorted((PROJECT_DIR / 'docs' / 'studies').glob('*/study.md')),
           *sorted((PROJECT_DIR / 'docs' / 'budgets').glob('*/budgets.md'))]
  return '\n'.join(page.read_text() for page in pages)


def numbers(text) -> set:
  return set(NUMBER.findall(text.replace('\u2212', '-')))


def missing(section) -> list:
  """The numbers `section` states that no generated page has."""
  return sorted(numbers(section) - numbers(generated_pages()))


def test_every_number_of_the_answer_is_in_a_generated_page():
  section = answer_section()
  assert len(numbers(section)) > 50  # it does state the studies' numbers
  assert not missing(section), 'README numbers no generated page has'


def test_the_methods_table_is_the_generated_one():
  claims_page = (PROJECT_DIR / 'docs' / 'claims.md').read_text()
  start = claims_page.index('| method | MNIST')
  table = claims_page[start:claims_page.index('\n\n', start)]
  assert table in answer_section()


def test_a_number_no_page_has_is_caught():
  """Not vacuous: one changed number in the prose is found, with the
  README's minus sign."""
  section = answer_section()
  assert '+0.65 [+0.50, +0.80]' in section
  changed = section.replace('+0.65 [+0.50, +0.80]', '+0.65 [+0.50, \u22127.77]')
  assert missing(changed) == ['-7.77']
