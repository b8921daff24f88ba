"""Where a step's time goes (machinery/profiling.py, tools/profile_step.py)."""

from machinery import profiling
from runs import run_tool

HLO = '''HloModule jit__step_on_device
%fused_computation.3 (param_0: f32[32,14,14,64]) -> f32[32,3,3,64] {
  %param_0 = f32[32,14,14,64]{3,2,1,0} parameter(0)
  ROOT %convolution = f32[32,3,3,64]{3,2,1,0} convolution(%param_0, %param_0)
}
%fused_computation.5 (param_0: f32[128,14,14,64]) -> f32[128,14,14,32] {
  ROOT %c = f32[128,14,14,32]{3,2,1,0} convolution(%p, %q), metadata={op_name="jit(_step_on_device)/transpose(jvp(CNN))/Conv_1/conv_general_dilated"}
}
ENTRY %main (p: f32[128,14,14,64]) -> f32[] {
  %ynn_fusion.3 = f32[32,3,3,64]{3,2,1,0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.3
  %ynn_fusion.5 = f32[128,14,14,32]{3,2,1,0} fusion(%a), kind=kCustom, calls=%fused_computation.5
  %ynn_fusion.11 = f32[128,14,14,64]{3,2,1,0} fusion(%a, %k), kind=kCustom, calls=%fused_computation.11, metadata={op_name="jit(_step_on_device)/jvp(CNN)/Conv_1/conv_general_dilated"}
  %multiply_add_fusion.5 = f32[3136,256]{1,0} fusion(%p1, %g), kind=kLoop, calls=%fused_computation.41, metadata={op_name="jit(_step_on_device)/add"}
  %all-reduce.20 = f32[3136,256]{1,0} all-reduce(%g), replica_groups={{0,1}}
  ROOT %wrapped_broadcast = f32[128,28,28,32]{3,2,1,0} fusion(%zero), kind=kLoop, calls=%wrapped_broadcast_computation
}
'''
PARAMETERS = {(3, 3, 32, 64): 'conv 2 (32 -> 64 channels, 14x14)',
              (256, 3136): 'dense 1 (3136 -> 256)'}


def test_every_op_is_named_by_its_layer_and_pass():
  names = profiling.op_names(HLO)
  part = {op: profiling.part_of(op, *names[op], PARAMETERS)
          for op in ('ynn_fusion.3', 'ynn_fusion.5', 'ynn_fusion.11',
                     'multiply_add_fusion.5', 'all-reduce.20',
                     'wrapped_broadcast')}
  assert part == {
      # no metadata, a parameter's shape: that kernel's gradient
      'ynn_fusion.3': 'conv 2 (32 -> 64 channels, 14x14), backward',
      # metadata from the op fused inside
      'ynn_fusion.5': 'conv 2 (32 -> 64 channels, 14x14), backward',
      'ynn_fusion.11': 'conv 2 (32 -> 64 channels, 14x14), forward',
      'multiply_add_fusion.5': 'optimizer update and gradient sums',
      'all-reduce.20': 'all-reduce between devices',
      'wrapped_broadcast': 'other (broadcasts, copies, elementwise)'}


def test_the_table_sums_each_part_per_step():
  names = profiling.op_names(HLO)
  events = [{'name': 'ynn_fusion.3', 'dur': 3000, 'ph': 'X'},
            {'name': 'ynn_fusion.5', 'dur': 1000, 'ph': 'X'},
            {'name': 'ynn_fusion.11', 'dur': 2000, 'ph': 'X'},
            {'name': 'PjitFunction(_step_on_device)', 'dur': 9000}]
  table = profiling.step_table(events, names, 2, PARAMETERS)
  assert table == [
      ('conv 2 (32 -> 64 channels, 14x14), backward', 2.0, 4 / 6),
      ('conv 2 (32 -> 64 channels, 14x14), forward', 1.0, 2 / 6)]
  assert '| conv 2 (32 -> 64 channels, 14x14), backward | 2.00 | 67% |' in (
      profiling.markdown(table, 'batch 2'))


def test_profile_step_prints_the_table(tmp_path):
  output = tmp_path / 'profile.md'
  result = run_tool('tools/profile_step.py', '--steps=4', '--train_size=512',
                    '--config.batch_size=32', '--config.cpu_devices=1',
                    f'--output={output}')
  assert result.returncode == 0, result.stderr[-2000:]
  text = output.read_text()
  assert text.startswith('| batch 32: 1 device(s), 1 micro-batch(es)')
  for part in ('conv 2 (32 -> 64 channels, 14x14), backward',
               'conv 1 (1 -> 32 channels, 28x28), forward',
               'dense 1 (3136 -> 256), forward', 'average pooling'):
    assert part in text
  assert 'images/s untraced' in text


def test_profile_step_uses_generated_data_for_every_task(tmp_path,
                                                         text_dir):
  """No data anywhere (an empty data dir, no download): the profile runs
  on generated data of the task's shapes, as its docstring says; the
  transformer's parts are named."""
  empty = tmp_path / 'no_data'
  empty.mkdir()
  result = run_tool('tools/profile_step.py', '--steps=4', '--train_size=256',
                    '--config.batch_size=32', '--config.cpu_devices=1',
                    f'--config.data_dir={empty}',
                    '--config.allow_download=false')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'on generated data' in result.stdout
  result = run_tool('tools/profile_step.py', '--steps=4', '--train_size=256',
                    '--config.batch_size=16', '--config.cpu_devices=1',
                    '--config.context_length=16', '--config.num_layers=1',
                    '--config.width=32', '--config.num_heads=2',
                    f'--config.data_dir={empty}',
                    '--config.allow_download=false', config='lm.py')
  assert result.returncode == 0, result.stderr[-2000:]
  for part in ('attention, forward', 'attention, backward',
               'MLP in (width -> 4 width), backward', 'LayerNorms, forward',
               'output layer (width -> 256), forward'):
    assert part in result.stdout
  assert 'tokens/s untraced' in result.stdout
