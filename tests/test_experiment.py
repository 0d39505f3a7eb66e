"""Experiments end to end: papermill runs of the training template, run records, `colorization-sweep` (failures, a kill
and a resume), the results table with its gray baseline. Tiny: sample photos, 32 px, one epoch."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from colorization.experiment import run_experiment, run_status
from colorization.results import GRAY, collect_records, results_table

SWEEP = str(Path(sys.executable).parent / 'colorization-sweep')
TINY = ['--epochs', '1', '--size', '32', '--bs', '4', '--limit', '16', '--allow-dirty']  # the tests run in working checkouts


def sweep_cmd(photos, cache, runs, *more):
    return [SWEEP, '--model', 'basic', 'labnet', '--loss', 'mse', *TINY, '--data', str(photos), '--cache-dir', str(cache),
            '--runs-dir', str(runs), *more]


def test_sweep_records_failures_and_builds_the_table(photos, cache, tmp_path):
    bad = tmp_path / 'one_photo'; bad.mkdir()
    (bad / 'a.jpg').write_bytes((photos / 'chelsea.jpg').read_bytes())  # too few photos: this run must fail
    grid = tmp_path / 'grid.yaml'
    grid.write_text(f'defaults: {{data: {photos}}}\nruns:\n  - {{model: [basic, labnet]}}\n'
                    f'  - {{model: labnet, seed: 7, data: {bad}}}\n')
    runs = tmp_path / 'runs'
    r = subprocess.run([SWEEP, str(grid), *TINY, '--cache-dir', str(cache), '--runs-dir', str(runs)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr            # one run failed: the sweep went on, and says so
    assert '[1/3]' in r.stdout and '[3/3]' in r.stdout and 'FAILED' in r.stdout
    recs = collect_records(runs).set_index('run_id')
    assert sorted(recs.status) == ['complete', 'complete', 'failed']
    failed = recs[recs.status == 'failed'].index[0]
    err = json.loads((runs / failed / 'error.json').read_text())
    assert 'usable image' in err['error'] and err['traceback']
    table = pd.read_csv(runs / 'results.csv')
    assert list(table.Model) == [GRAY, 'basic', 'labnet']
    gray = table.iloc[0]
    assert gray['Colourfulness'] < 1 and gray['ΔE2000'] > 0 and gray['Colourfulness (truth)'] > 1
    md = (runs / 'results.md').read_text()
    assert md.startswith('|Model|Data|Epochs|Learning rate|Batch Size|Loss Fn|Validation error|') and GRAY in md
    assert len(list((runs / '_baseline').glob('*.json'))) == 1   # the baseline is cached beside the records
    # the table is rebuilt from the records alone: same values, without the photos
    again = results_table(runs, write=False)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table, check_dtype=False, atol=1e-9)
    # a dry run lists what a new sweep would do: nothing for the complete runs, the failed one again
    r = subprocess.run([SWEEP, str(grid), *TINY, '--cache-dir', str(cache), '--runs-dir', str(runs), '--dry-run'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.count('skip (complete)') == 2 and 'run again (failed)' in r.stdout


def test_killed_sweep_resumes_without_redoing_finished_runs(photos, cache, tmp_path):
    runs = tmp_path / 'runs'
    def first_done(): return next(runs.glob('basic-mse-e1-lr0.01-bs4-s32-seed42-*/status.json'), None)  # the id names the data folder too
    proc = subprocess.Popen(sweep_cmd(photos, cache, runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while first_done() is None:
            assert proc.poll() is None, 'the sweep ended before its first run was complete'
            assert time.time() < deadline, 'the first run took too long'
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)               # the sweep and its kernel, in the middle of the second run
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(2)                                          # an orphaned kernel notices its parent is gone
    first = first_done().parent
    done = json.loads((first / 'status.json').read_text())
    mtime = (first / 'status.json').stat().st_mtime_ns
    recs = collect_records(runs).set_index('run_id')
    assert recs.loc[first.name, 'status'] == 'complete'
    assert (recs.status != 'complete').sum() <= 1          # the run in progress (if it had started) is incomplete
    r = subprocess.run(sweep_cmd(photos, cache, runs), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f'{first.name}: skip (complete)' in r.stdout
    recs = collect_records(runs)
    assert list(recs.status) == ['complete', 'complete']
    assert (first / 'status.json').stat().st_mtime_ns == mtime and json.loads((first / 'status.json').read_text()) == done
    assert list(pd.read_csv(runs / 'results.csv').Model) == [GRAY, 'basic', 'labnet']
    check_record(first)
    # `run_experiment` finds the same record complete and leaves it alone
    params = json.loads((first / 'params.json').read_text())
    assert run_experiment(params, runs) == done and (first / 'status.json').stat().st_mtime_ns == mtime


def check_record(run):
    "A complete record of one papermill run of the training template."
    assert run_status(run) == 'complete'
    names = {p.name for p in run.iterdir()}
    assert {'run.ipynb', 'params.json', 'status.json', 'config.json', 'metrics.json', 'history.csv', 'curves.png',
            'samples.png', 'model.safetensors'} <= names
    assert 'running.json' not in names and 'error.json' not in names
    nb = json.loads((run / 'run.ipynb').read_text())
    assert any('injected-parameters' in c['metadata'].get('tags', []) for c in nb['cells'])
    assert nb['metadata']['papermill']['input_path'] == 'nbs/experiments/train.ipynb'   # no machine paths
    assert nb['metadata']['papermill']['parameters']['out_dir'] == '.'
    metrics = json.loads((run / 'metrics.json').read_text())
    params = json.loads((run / 'params.json').read_text())
    assert json.loads((run / 'config.json').read_text())['run'] == f'data/runs/{run.name}'  # the record names itself, run in its own folder
    assert metrics['model'] == params['model'] and len(metrics['history']) == params['epochs'] == 1
    assert metrics['final']['psnr'] > 0 and metrics['train_seconds'] > 0


def test_a_run_starts_from_an_earlier_run_of_the_grid(photos, cache, tmp_path):
    from colorization.core import file_sha256
    from colorization.experiment import resolve_params, run_id
    tiny = dict(model='basic', epochs=1, size=32, bs=4, limit=16, data=str(photos))
    first = run_id(resolve_params(tiny))
    grid = tmp_path / 'grid.yaml'
    grid.write_text(f'defaults: {json.dumps(tiny)}\nruns:\n  - {{}}\n  - {{init: {first}, seed: 7}}\n')
    runs = tmp_path / 'runs'
    r = subprocess.run([SWEEP, str(grid), '--allow-dirty', '--cache-dir', str(cache), '--runs-dir', str(runs)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    second = runs / run_id(resolve_params({**tiny, 'init': first, 'seed': 7}))
    assert second.name.endswith('-from-basic')
    check_record(runs / first); check_record(second)
    init = json.loads((second / 'config.json').read_text())['init']  # the record names the weights it started from, by run and hash
    assert init == {'name': f'{first}/model.safetensors', 'sha256': file_sha256(runs / first / 'model.safetensors'), 'model': 'basic'}
    params = json.loads((second / 'run.ipynb').read_text())['metadata']['papermill']['parameters']
    assert params['init'] == f'../{first}/model.safetensors'  # relative to the run's folder: no machine path
    # a run whose init has no complete record is refused before anything runs
    import pytest
    with pytest.raises(FileNotFoundError, match='run it first'):
        run_experiment({**tiny, 'init': 'labnet-huber-e1-lr0.01-bs4-s32-seed42'}, runs)
