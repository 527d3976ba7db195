"""θ*'s sanity check (the runner warns about a θ* that looks broken) and BatchNorm recalibration (`bn_recalibrate`)."""
from __future__ import annotations

import copy
import logging

import pytest
import torch

from unlearnbench.config import DataConfig, ModelConfig, Setup, TrainRecipe
from unlearnbench.runner import Env, Runner, theta_warning
from unlearnbench.train import recalibrate_bn

pytestmark = pytest.mark.slow  # trains on real MNIST: `make test-fast` leaves these out

SETUP = Setup(DataConfig("mnist", train_per_class=100, test_per_class=50), ModelConfig("test_resnet"),
              TrainRecipe(epochs=4, batch_size=32, lr=3e-3, scheduler="cosine"), 0)


@pytest.fixture(scope="module")
def runner(tmp_path_factory, data_root):
    return Runner(Env(data_root, tmp_path_factory.mktemp("cache"), device="cpu", download=False, num_workers=0))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_thresholds_and_causes_by_hand():
    # sound: eval-mode test accuracy above 1.5 × chance and within 20 points of train mode
    assert theta_warning(95.0, 94.0, 80.0, 10, has_bn=True) is None
    # the same training images lose 60 points from train to eval mode: the running statistics
    assert "bn_recalibrate=true" in theta_warning(95.0, 35.0, 30.0, 10, has_bn=True)
    # measured (MobileNetV3-Small, 32 steps): undertrained and lagging; more is lost between the modes (18.4 points)
    # than between training and test images (2.4)
    assert "BatchNorm running statistics" in theta_warning(37.7, 19.3, 16.9, 10, has_bn=True)
    # near chance (≤ 15% for 10 classes) in train mode too: not learned; more epochs
    assert "not learned" in theta_warning(14.0, 12.0, 11.0, 10, has_bn=True)
    assert "bn_recalibrate" not in theta_warning(14.0, 12.0, 11.0, 10, has_bn=True)
    # train and eval mode agree on training images, test far behind: too few images, not BatchNorm
    assert "train_per_class" in theta_warning(99.0, 98.0, 60.0, 10, has_bn=True)
    # without BatchNorm the mode gap cannot be its running statistics
    assert "bn_recalibrate" not in theta_warning(95.0, 35.0, 30.0, 10, has_bn=False)
    assert "eval mode" in theta_warning(95.0, 35.0, 30.0, 10, has_bn=False)
    # the edges: eval-mode test accuracy at 1.5 × chance warns, above it not; a mode gap of 20 points does not warn
    assert theta_warning(30.0, 30.0, 15.0, 10, has_bn=True) is not None
    assert theta_warning(30.0, 30.0, 15.1, 10, has_bn=True) is None
    assert theta_warning(50.0, 50.0, 30.0, 10, has_bn=True) is None
    assert theta_warning(50.1, 50.1, 30.0, 10, has_bn=True) is not None
    assert theta_warning(50.0, 50.0, 30.0, 100, has_bn=True) is None  # chance is 1% with 100 classes


def test_sound_theta_no_warning_broken_one_warns_and_recalibration_fixes_it(runner, caplog):
    caplog.set_level(logging.INFO, logger="unlearnbench")
    model, _, _ = runner.original(SETUP)  # trained here; checked once, on the way out
    assert not _warnings(caplog)
    assert any("train-mode" in r.getMessage() for r in caplog.records)  # the numbers go to the log at INFO
    before = copy.deepcopy(model.state_dict())
    good = runner.check_original(SETUP, model)
    assert good["eval_test"] > 70 and abs(good["train_mode"] - good["eval_train"]) < 10
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # θ*'s statistics untouched
    assert not model.training

    broken = copy.deepcopy(model)  # running statistics of another model: eval mode normalises by the wrong values
    with torch.no_grad():
        for m in broken.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(3.0)
                m.running_var.mul_(0.01)
    caplog.clear()
    found = runner.check_original(SETUP, broken)
    assert found["train_mode"] == pytest.approx(good["train_mode"])  # train mode ignores the running statistics
    assert found["eval_test"] < good["eval_test"] - 20
    (line,) = _warnings(caplog)
    assert "looks broken" in line and "BatchNorm running statistics" in line and "bn_recalibrate=true" in line

    data = runner.data(SETUP.data)
    recalibrate_bn(broken, data.sample_set("train"), runner.runtime(SETUP.train), SETUP.train.batch_size)
    caplog.clear()
    fixed = runner.check_original(SETUP, broken)
    assert not _warnings(caplog) and fixed["eval_test"] > good["eval_test"] - 5


def test_bn_recalibrate_carries_to_the_oracle_not_to_finetune(mnist_small, monkeypatch):
    """θ*'s recipe with `bn_recalibrate`: retrain (θ*'s recipe on D_r) recalibrates, fine-tune (its official recipe,
    built from θ*'s) does not."""
    import unlearnbench.train as train
    from unlearnbench.methods.finetune import FinetuneHP, finetune
    from unlearnbench.methods.retrain import RetrainHP, retrain
    from unlearnbench.method import UnlearnTask
    from unlearnbench.models import create_model
    from unlearnbench.runtime import Runtime

    calls: list[int] = []
    monkeypatch.setattr(train, "recalibrate_bn", lambda model, data, runtime, batch_size: calls.append(len(data)))
    retain = mnist_small.sample_set("train", "retain", 3)
    task = UnlearnTask(mnist_small.sample_set("train", "forget", 3), retain, 3, 10, (1, 32, 32),
                       TrainRecipe(epochs=1, batch_size=100, bn_recalibrate=True), Runtime(torch.device("cpu")),
                       lambda seed: create_model(ModelConfig("test_resnet"), 10, 1))
    finetune(create_model(ModelConfig("test_resnet"), 10, 1), task, FinetuneHP(epochs=1), 0)
    assert calls == []
    retrain(create_model(ModelConfig("test_resnet"), 10, 1), task, RetrainHP(), 0)
    assert calls == [len(retain)] == [900]
