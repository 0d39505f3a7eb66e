"""Every registered model learns: its own loss, through its own learner and fit, falls on a few real photos (fast, in CI)."""
import time

import pytest
import torch
from fastai.torch_core import set_seed

from colorization.data import colorization_dls
from colorization.hints import truth_hints
from colorization.models import colorization_learner
from colorization.models import MODELS, create_model

STEPS = {'basic': 30, 'labgan': 5, 'effunet': 20, 'effunet1': 20, 'effunet2': 10, 'effplain': 20, 'effgan': 20, 'hinteff': 150, 'hintunet': 150}  # epochs over the 4 training photos (one batch each): 20, fewer for labgan and the Lite2 U-Net, more for the plain basic net and the hint refiner (small, and its twin stays frozen)

LR = {'hinteff': 1e-2, 'hintunet': 1e-2}  # the refiner learns to weigh a handful of scales: on 4 photos it needs a larger step than on a corpus


@pytest.fixture(scope='module')
def loaders(photos, cache):
    "DataLoaders of 32 px crops of the sample photos per (space, backbone), the same photos as training and as the fixed batch."
    made = {}
    def get(spec):
        key = (spec.space, spec.backbone)
        if key not in made:
            kw = dict(embed_size=32 if spec.backbone != 'efficientnet_lite0' else 64, pretrained=spec.backbone == 'efficientnet_lite0') if spec.backbone else {}
            if spec.backbone in ('inception_v3', 'inception_resnet_v2'): kw['embed_size'] = 75
            made[key] = colorization_dls(photos, space=spec.space, size=32, bs=4, backbone=spec.backbone, valid_pct=0.25, seed=0,
                                         cache_dir=cache, progress=False, device='cpu', **kw), kw
        return made[key]
    return get


def _fixed_loss(learn, batch) -> float:
    "The learner's loss on `batch`, the model in training mode (batch statistics), as in training; a hint model gets the same hints each time."
    *xb, y = batch
    if getattr(learn.model, 'takes_hints', False): xb = (*xb, truth_hints(y, 50, generator=torch.Generator().manual_seed(0)))
    learn.model.train()
    with torch.no_grad(): return float(learn.loss_func(learn.model(*xb), y))


@pytest.mark.parametrize('name', list(MODELS))
def test_model_loss_falls(name, loaders, tmp_path):
    spec = MODELS[name]
    dls, kw = loaders(spec)
    set_seed(0, reproducible=True)
    model = create_model(name, **kw)
    learn = (spec.learner or colorization_learner)(dls, model, loss=spec.loss, path=tmp_path, csv=False)
    learn.metrics = []
    dls.train.rng.seed(0); torch.manual_seed(0)  # the same fixed batch whichever tests ran before
    batch = dls.train.one_batch()
    set_seed(0, reproducible=True)
    before = _fixed_loss(learn, batch)
    start = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        steps = STEPS.get(name, 20)
        if spec.fit is None: learn.fit_one_cycle(steps, LR.get(name, spec.lr))
        else: spec.fit(learn, steps, spec.lr)
    after = _fixed_loss(learn, batch)
    print(f'{name}: {spec.loss} {before:.4f} -> {after:.4f} in {time.perf_counter() - start:.1f} s')
    need = 0.85 if spec.loss == 'ce' else 0.7  # the cross-entropy of soft-encoded targets has a floor: their entropy
    if getattr(model, 'takes_hints', False): need = 0.85  # only the refiner learns: it moves its frozen twin's colours towards hints that help from the start
    if name == 'hintunet': need = 0.9  # its refiner's starting mix of scales is already near its best on the U-Net twin's colours: 15% of the loss is what is left to learn here
    assert after < before * need, f'{name}: its {spec.loss} loss fell only from {before:.4f} to {after:.4f}'
