"A training run killed part way goes on from its last finished epoch, and ends where an unbroken run ends."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from colorization.data import sample_folder
from colorization.train import RESUME_DIR, train

ARGS = dict(epochs=4, size=32, bs=4, lr=1e-2, valid_pct=0.25)

def _train_code(photos, out, cache):
    return (f"from colorization.train import train; "
            f"train('labnet', data={str(photos)!r}, out={str(out)!r}, cache_dir={str(cache)!r}, **{ARGS!r})")

def test_killed_run_resumes(tmp_path):
    photos, cache = sample_folder(tmp_path / 'photos'), tmp_path / 'cache'
    _, whole = train('labnet', data=photos, out=tmp_path / 'whole', cache_dir=cache, **ARGS)
    out = tmp_path / 'killed'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([sys.executable, '-c', _train_code(photos, out, cache)], env=env)
    state, t0 = out / RESUME_DIR / 'state.json', time.time()
    try:
        while time.time() - t0 < 300:  # kill it once two epochs are saved
            if state.is_file() and len(json.loads(state.read_text())['values']) >= 2: break
            if proc.poll() is not None: pytest.fail('the run ended before it could be killed')
            time.sleep(0.05)
        else: pytest.fail('no state after two epochs')
    finally:
        proc.send_signal(signal.SIGKILL); proc.wait()
    assert not (out / 'metrics.json').exists()
    _, resumed = train('labnet', data=photos, out=out, cache_dir=cache, **ARGS)
    cfg = json.loads((out / 'config.json').read_text())
    assert len(cfg['sittings']) == 2 and cfg['sittings'][1]['from_epoch'] >= 2
    assert not (out / RESUME_DIR).exists()
    assert len(resumed['history']) == 4 and len((out / 'history.csv').read_text().strip().splitlines()) == 5
    # the same epochs as the unbroken run (the random states are part of the state; only the thread count differs)
    assert [h["valid_loss"] for h in resumed["history"]] == pytest.approx([h["valid_loss"] for h in whole["history"]], rel=1e-4)
