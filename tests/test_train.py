from __future__ import annotations

import math

import pytest
import torch

from unlearnbench.config import ModelConfig, TrainRecipe
from unlearnbench.data import SampleSet, TensorSource
from unlearnbench.models import create_model
from unlearnbench.runtime import Runtime, generator
from unlearnbench.train import (accuracy, fit, forget_retain_accuracy, make_optimizer, predict,
                                predict_batch_statistics, running_stats, train_steps)

CPU = Runtime(torch.device("cpu"))


def test_accuracy_by_hand():
    logits = torch.tensor([[2., 1, 0], [0, 3, 1], [1, 0, 2], [5, 0, 0], [0, 0, 1]])
    labels = torch.tensor([0, 1, 1, 0, 0])  # predictions 0, 1, 2, 0, 2 → right, right, wrong, right, wrong
    assert accuracy(logits, labels) == pytest.approx(60.0)
    acc_f, acc_r = forget_retain_accuracy(logits, labels, forget_class=1)
    assert acc_f == pytest.approx(50.0)  # class-1 samples: #1 right, #2 wrong
    assert acc_r == pytest.approx(100 * 2 / 3)  # others: #0 right, #3 right, #4 wrong
    assert math.isnan(accuracy(logits[:0], labels[:0]))


def test_batch_statistics_normalise_each_batch_and_leave_the_model_alone():
    images = torch.tensor([1, 3, 10, 14, 20], dtype=torch.uint8).view(5, 1, 1, 1)
    data = SampleSet.of(TensorSource(images, torch.zeros(5, dtype=torch.long), (0.0,), (1 / 255,)))  # x = pixel value
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1, affine=False), torch.nn.Flatten())
    model[0].running_mean.fill_(100.0)  # stale statistics: eval mode would map every input far below zero
    model.eval()
    out = predict_batch_statistics(model, data, CPU, batch_size=2, drop_last=True)
    # batch [1, 3]: mean 2, biased variance 1 -> -1, 1; batch [10, 14]: mean 12, variance 4 -> -1, 1; [20] dropped
    torch.testing.assert_close(out.squeeze(1), torch.tensor([-1.0, 1.0, -1.0, 1.0]), atol=1e-4, rtol=0)
    assert float(model[0].running_mean) == 100.0 and not model.training
    assert len(predict_batch_statistics(model, data, CPU, batch_size=3)) == 5  # a partial batch is kept by default


def test_predict_is_sample_weighted_over_a_partial_last_batch():
    # 7 samples, batch 3: batches of 3, 3, 1. A per-batch mean would weight the last sample 3x.
    images = torch.zeros(7, 1, 2, 2, dtype=torch.uint8)
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1])
    src = TensorSource(images, labels, (0.0,), (1.0,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    logits = predict(model, SampleSet.of(src), CPU, batch_size=3)
    assert logits.shape == (7, 2)
    assert accuracy(logits, labels) == pytest.approx(600 / 7)  # a per-batch mean would say (100+100+0)/3


def _train_once(data, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = create_model(ModelConfig("test_resnet"), 10, 1)
    fit(model, data.sample_set("train"), TrainRecipe(epochs=1, batch_size=64, augment="crop"), CPU,
        generator(seed, 1))
    return model.state_dict()


@pytest.mark.slow
def test_training_is_deterministic_on_cpu(mnist_small):
    a, b, c = _train_once(mnist_small, 0), _train_once(mnist_small, 0), _train_once(mnist_small, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_training_learns_real_mnist(mnist_small):
    torch.manual_seed(0)
    model = create_model(ModelConfig("test_resnet"), 10, 1)
    before = accuracy(predict(model, mnist_small.sample_set("test"), CPU), mnist_small.test.labels)
    fit(model, mnist_small.sample_set("train"), TrainRecipe(epochs=3, batch_size=32, lr=3e-3), CPU, generator(0))
    after = accuracy(predict(model, mnist_small.sample_set("test"), CPU), mnist_small.test.labels)
    assert before < 20 and after > 75


def test_stop_rule_and_term_logging(mnist_small):
    model = create_model(ModelConfig("test_resnet"), 10, 1)
    opt = make_optimizer(model.parameters(), "adam", 1e-3)

    def loss(m, batch):
        ce = torch.nn.functional.cross_entropy(m(batch.x), batch.y)
        return 2 * ce, {"ce": ce}

    log = train_steps(model, opt, mnist_small.sample_set("train").batches(10), loss, CPU,
                      should_stop=lambda s: s.steps == 4)
    assert log.stopped and log.steps == 4 and log.samples == 40
    assert log.means()["loss"] == pytest.approx(2 * log.means()["ce"], rel=1e-5)


def test_cosine_schedule_spans_all_epochs(mnist_small):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 10))
    data = mnist_small.sample_set("train")  # 1000 samples: 4 steps per epoch of 250
    logs = fit(model, data, TrainRecipe(optimizer="sgd", lr=0.1, epochs=2, batch_size=250, scheduler="cosine"),
               CPU, generator(0))
    assert [log.steps for log in logs] == [4, 4]
    assert logs[0].lr == pytest.approx(0.05)  # half way through the schedule: cos(pi/2)
    assert logs[1].lr == pytest.approx(0.0, abs=1e-12)
    flat = fit(model, data, TrainRecipe(optimizer="sgd", lr=0.1, epochs=1, batch_size=250), CPU, generator(0))
    assert flat[0].lr == 0.1


def test_fp16_is_refused_on_cpu():
    from unlearnbench.errors import UsageError
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        Runtime(torch.device("cpu"), precision="fp16")


def test_running_stats_keep_freezes_the_statistics_but_not_the_normalisation():
    x = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)  # batch mean 2, biased variance 1
    for mode, mean_after in (("keep", 0.0), ("update", 0.2)):  # update: 0.9 · 0 + 0.1 · 2
        bn = torch.nn.BatchNorm2d(1, affine=False).train()
        with running_stats(bn, mode):
            out = bn(x)
            assert bn.momentum == (0.0 if mode == "keep" else 0.1)
        torch.testing.assert_close(out.flatten(), torch.tensor([-1.0, 1.0]), atol=1e-4, rtol=0)  # batch statistics
        assert float(bn.running_mean) == pytest.approx(mean_after) and bn.momentum == 0.1  # momentum given back
    with pytest.raises(RuntimeError), running_stats(bn := torch.nn.BatchNorm1d(1), "keep"):
        raise RuntimeError
    assert bn.momentum == 0.1  # given back when the block fails too


def test_bn_recalibrate_sets_running_statistics_to_the_data_average():
    """With `bn_recalibrate`, a BatchNorm's running statistics end as update_bn's cumulative average over the training
    batches (in order, unaugmented): mean = the average of the batch means, var = the average of the batches' unbiased
    variances. The weights, and the data order, are exactly those of the same fit without it."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 1, 2, 2), dtype=torch.uint8, generator=g)
    data = SampleSet.of(TensorSource(images, torch.randint(0, 2, (60,), generator=g), (0.0,), (1.0,)))
    x = images.float() / 255  # the normalised images (mean 0, std 1)
    runs = {}
    for recalibrate in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        fit(model, data, TrainRecipe(epochs=2, batch_size=20, augment="crop", bn_recalibrate=recalibrate), CPU,
            generator(0))
        assert model.training and model[0].momentum == 0.1  # update_bn gives back the mode and the momentum
        runs[recalibrate] = model.state_dict()
    bn = {k: runs[True][f"0.{k}"] for k in ("running_mean", "running_var", "num_batches_tracked")}
    batches = x.view(3, 20 * 4)  # three batches of 20 images, 4 pixels each, one channel
    assert bn["running_mean"] == pytest.approx([float(batches.mean(1).mean())], rel=1e-5)
    assert bn["running_var"] == pytest.approx([float(batches.var(1).mean())], rel=1e-5)
    assert int(bn["num_batches_tracked"]) == 3
    assert not torch.allclose(runs[False]["0.running_mean"], bn["running_mean"])
    assert all(torch.equal(runs[False][k], runs[True][k]) for k in ("0.weight", "0.bias", "2.weight", "2.bias"))
