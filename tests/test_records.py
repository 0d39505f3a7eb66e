"""The committed run records tell the truth: each names the epoch and file of its weights and the state of its code, the
gray baselines re-measure to their cache, and bad training arguments are refused with one line before any work."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from colorization.experiment import default_runs_dir
from colorization.results import gray_baseline

RUNS = default_runs_dir()
BIN = Path(sys.executable).parent
RECORDS = sorted(p.parent for p in RUNS.glob('*/metrics.json'))
needs_data = pytest.mark.skipif(not os.environ.get('COLORIZATION_DATA'), reason='needs the landscape photos (COLORIZATION_DATA)')


@pytest.mark.parametrize('run', RECORDS, ids=[r.name for r in RECORDS])
def test_record_names_its_weights(run):
    """final = the history row of `checkpoint_epoch` (a WiSE-FT run: its `unblended` is, and `final` scores the blend it
    saved); a weights hash (null only where the weights were not kept); the code state."""
    m, config = json.loads((run / 'metrics.json').read_text()), json.loads((run / 'config.json').read_text())
    env, blend = config['environment'], config.get('wise') is not None
    assert m['unblended' if blend else 'final'] == m['history'][m['checkpoint_epoch']]
    if blend: assert m['final']['epoch'] == m['checkpoint_epoch'] and m['final']['psnr'] != m['unblended']['psnr']
    assert 'weights_sha256' in m and (m['weights_sha256'] is not None or 'record_note' in m)
    assert {'dirty', 'diff_sha256'} <= set(env)  # recorded (null in records written before the flag, which say so)
    assert env['dirty'] is not None or 'record_note' in m


def test_records_after_the_fix_are_complete():
    "Records written by this code carry every field, and the last epoch is the checkpoint."
    new = [r for r in RECORDS if 'record_note' not in json.loads((r / 'metrics.json').read_text())]
    for run in new:
        m, env = json.loads((run / 'metrics.json').read_text()), json.loads((run / 'config.json').read_text())['environment']
        assert m['checkpoint_epoch'] == len(m['history']) - 1 and len(m['weights_sha256']) == 64
        assert isinstance(env['dirty'], bool) and env['git_commit']


@needs_data
@pytest.mark.parametrize('cached', sorted((RUNS / '_baseline').glob('gray-s64-*.json')), ids=lambda p: p.stem)
def test_gray_baseline_remeasures_to_its_cache(cached, tmp_path):
    "The cached gray baseline of the CPU protocol, measured again from the photos (not read from the cache)."
    c = json.loads(cached.read_text())
    k = c['key']
    if k['data'] != Path(os.environ['COLORIZATION_DATA']).name: pytest.skip(f"baseline of {k['data']}")
    again = gray_baseline(os.environ['COLORIZATION_DATA'], size=k['size'], seed=k['seed'], limit=k['limit'],
                          valid_pct=k['valid_pct'], runs_dir=None, cache_dir=tmp_path)
    for name, v in c['metrics'].items(): assert again[name] == pytest.approx(v, abs=1e-4), name


@pytest.mark.parametrize('args, reason', [(['--lr', 'nan'], 'learning rate'), (['--lr', '-1'], 'learning rate'),
                                          (['--lr', '0'], 'learning rate'), (['--epochs', '0'], 'epochs'),
                                          (['--bs', '0'], 'batch size')])
def test_bad_training_arguments_fail_in_one_line(args, reason, tmp_path):
    r = subprocess.run([str(BIN / 'grayscale2color'), '--model', 'labnet', '--data', str(tmp_path), *args, '--out', str(tmp_path / 'o')],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and reason in r.stderr, r.stderr
    assert not (tmp_path / 'o').exists()  # refused before any work


def test_bad_sweep_arguments_fail_before_any_run(tmp_path):
    r = subprocess.run([str(BIN / 'colorization-sweep'), '--model', 'labnet', '--lr', 'nan', '--runs-dir', str(tmp_path / 'runs')],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'learning rate' in r.stderr, r.stderr
    assert not (tmp_path / 'runs').exists()


@needs_data
def test_shipped_model_rescores_to_its_record_table_and_readme(tmp_path):
    "The shipped weights, scored again on their run's validation photos, give the figures of the record, the table and the README."
    import pandas as pd
    from colorization.inference import default_checkpoint
    from colorization.checkpoint import read_checkpoint_meta
    from colorization.evaluation import rescore
    shipped = default_checkpoint()
    run = RUNS.parent.parent / read_checkpoint_meta(shipped)['config']['run']
    final = json.loads((run / 'metrics.json').read_text())['final']
    from colorization.train import file_sha256
    assert json.loads((run / 'metrics.json').read_text())['weights_sha256'] == file_sha256(shipped)  # the record names this file
    again = rescore(run, checkpoint=shipped, cache_dir=tmp_path)
    assert again['psnr'] == pytest.approx(final['psnr'], abs=0.01) and again['delta_e2000'] == pytest.approx(final['delta_e2000'], abs=0.01)
    row = pd.read_csv(RUNS / 'results.csv').set_index('Run').loc[run.name]
    assert row['PSNR (dB)'] == pytest.approx(final['psnr'], abs=1e-6)
    readme = (RUNS.parent.parent / 'README.md').read_text()
    assert f"{final['psnr']:.2f} dB PSNR" in readme and f"{final['delta_e2000']:.2f} ΔE2000" in readme


def test_readme_is_rendered_from_the_index_notebook_and_the_records():
    "README.md is what `render_readme` makes of nbs/index.ipynb and the committed records: no figure in it drifts."
    from colorization.results import render_readme
    assert render_readme(out=None) == (RUNS.parent.parent / 'README.md').read_text()
