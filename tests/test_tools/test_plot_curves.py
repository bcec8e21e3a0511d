"""tools/analysis_tools/plot_curves.py on hand-written scalars.json files."""
import json
import os.path as osp

import pytest

from tool_loader import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'plot_curves.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def write_run(work_dir, loss_scale=1.0):
    """MMEngine layout: <work_dir>/<timestamp>/vis_data/scalars.json."""
    vis_data = work_dir / '20240101_000000' / 'vis_data'
    vis_data.mkdir(parents=True)
    lines = []
    for it in range(1, 5):
        lines.append(dict(lr=1e-3 / it, loss=loss_scale * (2.0 - 0.25 * it),
                          cos_sim=0.1 * it, teacher_momentum=0.96,
                          data_time=0.01, time=0.1, epoch=1 + (it > 2),
                          iter=it, step=it, name='text is skipped'))
        if it % 2 == 0:
            lines.append({'knn/top1': 10.0 * it, 'knn/top5': 50.0,
                          'step': it})
    with open(vis_data / 'scalars.json', 'w') as f:
        f.write('\n'.join(json.dumps(line) for line in lines) + '\n')
    return vis_data / 'scalars.json'


def test_two_runs_default_keys(tool, tmp_path, capsys):
    write_run(tmp_path / 'sdae')
    rcmae_file = write_run(tmp_path / 'rcmae', loss_scale=0.5)
    out = tmp_path / 'curves.png'
    assert tool.main([str(tmp_path / 'sdae'), str(rcmae_file), '--labels',
                      'SdAE', 'RC-MAE', '--out', str(out)]) == 0
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    text = capsys.readouterr().out
    # the keys found, then first / last values of the default keys
    assert 'keys: cos_sim, data_time, knn/top1, knn/top5, loss, lr' in text
    rows = {tuple(line.split()[:2]): line for line in text.splitlines()}
    assert '1.75 @ 1' in rows['SdAE', 'loss']
    assert '1 @ 4' in rows['SdAE', 'loss']
    assert '0.875 @ 1' in rows['RC-MAE', 'loss']
    assert '20 @ 2' in rows['RC-MAE', 'knn/top1']
    assert '40 @ 4' in rows['RC-MAE', 'knn/top1']
    for key in ('lr', 'teacher_momentum', 'cos_sim'):
        assert ('SdAE', key) in rows
    for key in ('data_time', 'time', 'knn/top5', 'step', 'epoch'):
        assert ('SdAE', key) not in rows


def test_chosen_keys_and_default_labels(tool, tmp_path, capsys):
    write_run(tmp_path / 'demo')
    out = tmp_path / 'knn.png'
    tool.main([str(tmp_path / 'demo'), '--keys', 'knn/top5', '--out',
               str(out), '--smooth', '2'])
    assert out.is_file()
    table = capsys.readouterr().out
    assert 'demo  knn/top5  2       50 @ 2  50 @ 4' in table


def test_unknown_key_lists_the_available_ones(tool, tmp_path):
    write_run(tmp_path / 'demo')
    with pytest.raises(SystemExit,
                       match=r"unknown key\(s\) \['los'\]; available keys: "
                       'cos_sim, data_time, knn/top1, knn/top5, loss, lr'):
        tool.main([str(tmp_path / 'demo'), '--keys', 'los',
                   '--out', str(tmp_path / 'x.png')])
    assert not (tmp_path / 'x.png').exists()


def test_missing_files_and_bad_labels(tool, tmp_path):
    with pytest.raises(SystemExit, match='does not exist'):
        tool.main([str(tmp_path / 'nowhere')])
    (tmp_path / 'empty_work_dir').mkdir()
    with pytest.raises(SystemExit, match='no scalars.json'):
        tool.main([str(tmp_path / 'empty_work_dir')])
    write_run(tmp_path / 'demo')
    with pytest.raises(SystemExit, match='1 --labels for 2 runs'):
        tool.main([str(tmp_path / 'demo'), str(tmp_path / 'demo'),
                   '--labels', 'a'])
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1, "step": 1}\nnot json\n')
    with pytest.raises(SystemExit, match='bad.json:2 is not JSON'):
        tool.main([str(bad)])


def test_last_values_only(tool, tmp_path, capsys):
    """--last prints each run's last value of the keys (in the order the
    run logged them first) and draws nothing: loss = scale x (2 - 0.25 x 4),
    knn/top1 = 10 x 4 at the last step."""
    write_run(tmp_path / 'a')
    write_run(tmp_path / 'b', loss_scale=2.0)
    assert tool.main([str(tmp_path / 'a'), str(tmp_path / 'b'), '--labels',
                      'A', 'B', '--last', 'knn/top1', 'loss', '--out',
                      str(tmp_path / 'c.png')]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '  A: loss=1  knn/top1=40', '  B: loss=2  knn/top1=40']
    assert not (tmp_path / 'c.png').exists()
