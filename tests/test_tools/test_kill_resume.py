"""tools/fault_injection/kill_resume.py: a job SIGKILLed during steps,
checkpoint writes and the epoch-end teacher update, resumed each time with
``--resume``, ends with the uninterrupted run's weights bit for bit (2
DataLoader workers, mid-epoch checkpoints); its checks can fail."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tool_loader import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'fault_injection', 'kill_resume.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool(SCRIPT)


@pytest.mark.slow
def test_killed_and_resumed_runs_end_with_the_uninterrupted_weights(
        tmp_path):
    # 32 images, batch 16, 2 epochs: 4 iterations, a checkpoint after each;
    # seed 20 kills half-way through the first teacher update, then half-way
    # through the resumed run's first checkpoint write
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--kills', '2', '--epochs', '2',
         '--images', '32', '--batch', '16', '--ckpt-interval', '1',
         '--seed', '20', '--work-root', str(tmp_path)],
        capture_output=True, text=True, timeout=600,
        env=dict(__import__('os').environ, OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert out.strip().splitlines()[-1].startswith('2 of 2 kills'), out
    assert 'kill 1: teacher (teacher:1)' in out, out
    assert 'kill 2: checkpoint (checkpoint:1)' in out, out
    assert '1 half-written temporary file(s) left' in out, out
    assert 'bit-identical final weights, no unreadable checkpoint' in out
    assert 'max |final - uninterrupted| = 0\n' in out


def test_a_half_written_checkpoint_is_reported(tool, tmp_path):
    torch.save(dict(state_dict={'w': torch.ones(64)}), tmp_path / 'a.pth')
    assert tool.check_checkpoints(str(tmp_path)) == (1, 0)
    data = (tmp_path / 'a.pth').read_bytes()
    (tmp_path / 'iter_2.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(SystemExit, match='UNREADABLE checkpoint'):
        tool.check_checkpoints(str(tmp_path))


def test_weight_differences_are_measured(tool):
    a = {'w': torch.zeros(3), 'n': torch.tensor(4)}
    assert tool.max_difference(a, dict(a)) == 0
    assert tool.max_difference(a, dict(a, w=torch.tensor([0, 1e-7, 0.]))) \
        == pytest.approx(1e-7)
    assert tool.max_difference(a, dict(a, n=torch.tensor(5))) == 1
