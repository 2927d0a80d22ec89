"""Training pieces: matching, loss, augmentation, the loop with checkpoints and resume."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import need_shared  # noqa: E402
from retinakit.config import get_preset  # noqa: E402
from retinakit.core.outputs import RawOutputs  # noqa: E402
from retinakit.training.augment import AugmentConfig, Sample, augment, hflip, random_square_crop  # noqa: E402
from retinakit.training.loss import MultiTaskLoss, get_loss_preset  # noqa: E402
from retinakit.training.matching import BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, Matcher  # noqa: E402

V = (0.1, 0.2)


def test_matcher_thresholds_sentinels_and_best_anchor():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 104.0, 104.0]])
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 with face 0
            [0.0, 0.0, 10.0, 6.0],  # IoU 0.6 -> face 0
            [0.0, 0.0, 10.0, 4.0],  # IoU 0.4 -> between
            [50.0, 50.0, 60.0, 60.0],  # nothing -> background
            [100.0, 100.0, 120.0, 120.0],  # IoU 0.04 with the small face, but its best anchor
        ]
    )
    m = Matcher(positive=0.5, negative=0.3)(gt, anchors)
    assert m.tolist() == [0, 0, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD, 1]
    assert Matcher(0.5, 0.3, keep_best=False)(gt, anchors).tolist()[4] == BELOW_LOW_THRESHOLD
    # biubug6: a best anchor with IoU below 0.2 is not forced (the tiny face is left to the background)
    assert Matcher(0.5, 0.3, min_best_iou=0.2)(gt, anchors).tolist() == [0, 0, BETWEEN_THRESHOLDS, -1, -1]
    assert Matcher(0.5, 0.3)(torch.zeros(0, 4), anchors).tolist() == [BELOW_LOW_THRESHOLD] * 5


def _setup(num_anchors=64):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(num_anchors, 2, generator=g) * 100
    anchors = torch.cat([xy, torch.full((num_anchors, 2), 16.0)], dim=1)
    raw = RawOutputs(
        torch.randn(2, num_anchors, 4, generator=g, requires_grad=True),
        torch.randn(2, num_anchors, 2, generator=g, requires_grad=True),
        torch.randn(2, num_anchors, 10, generator=g, requires_grad=True),
    )
    return anchors, raw


def _target(boxes, with_landmarks=True):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return {
        "boxes": boxes,
        "landmarks": centre[:, None, :].repeat(1, 5, 1),
        "has_landmarks": torch.full((len(boxes),), with_landmarks),
    }


def test_image_without_faces_gives_exactly_zero_box_and_landmark_loss():
    anchors, raw = _setup()
    loss = MultiTaskLoss(get_loss_preset("paper"), V)
    out = loss(raw, [_target([]), _target([])], anchors)
    assert out["box"].item() == 0.0 and out["landmarks"].item() == 0.0
    assert out["cls"].item() > 0  # mined negatives still teach the background
    out["total"].backward()
    assert raw.box_deltas.grad is not None and torch.all(raw.box_deltas.grad == 0)


def test_landmark_loss_only_where_landmarks_exist():
    anchors, raw = _setup()
    a = anchors[0]
    box = [a[0] - 8, a[1] - 8, a[0] + 8, a[1] + 8]
    loss = MultiTaskLoss(get_loss_preset("paper"), V)
    out = loss(raw, [_target([box], with_landmarks=False), _target([])], anchors)
    assert out["box"].item() > 0 and out["landmarks"].item() == 0.0


def test_perfect_predictions_give_zero_regression_loss_and_ohem_ratio():
    from retinakit.core.box_coder import encode_boxes, encode_landmarks

    anchors, _ = _setup()
    a = anchors[3]
    target = _target([[a[0] - 8, a[1] - 8, a[0] + 8, a[1] + 8]])
    deltas = torch.zeros(1, len(anchors), 4)
    deltas[0, 3] = encode_boxes(target["boxes"], anchors[3:4], V)[0]
    points = torch.zeros(1, len(anchors), 10)
    points[0, 3] = encode_landmarks(target["landmarks"], anchors[3:4], V)[0]
    logits = torch.zeros(1, len(anchors), 2)
    loss = MultiTaskLoss(get_loss_preset("paper"), V)
    out = loss(RawOutputs(deltas, logits, points), [target], anchors)
    assert out["box"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["landmarks"].item() == pytest.approx(0.0, abs=1e-6)
    # equal logits: CE = log 2 per anchor; positives P, mined negatives max(3P, 16) (min_negatives)
    positives = int(
        (Matcher(0.5, 0.3)(target["boxes"], torch.cat([anchors[:, :2] - 8, anchors[:, :2] + 8], 1)) >= 0).sum()
    )
    expected = (positives + max(3 * positives, 16)) * np.log(2) / positives
    assert out["cls"].item() == pytest.approx(expected, rel=1e-5)


def _sample(rng=None):
    rng = rng or np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    boxes = np.array([[50, 60, 110, 140], [250, 100, 300, 170]], np.float32)
    lm = np.array(
        [
            [[65, 90], [95, 90], [80, 105], [68, 120], [92, 120]],
            [[262, 125], [288, 125], [275, 140], [265, 155], [285, 155]],
        ],
        np.float32,
    )
    return Sample(image, boxes, lm, np.array([True, False]))


def test_flip_twice_is_identity_and_landmarks_keep_their_names():
    s = _sample()
    once = hflip(s)
    assert once.landmarks[0, 0, 0] < once.landmarks[0, 1, 0]  # image-left eye stays left of right eye
    np.testing.assert_allclose(once.boxes[0], [400 - 110, 60, 400 - 50, 140])
    twice = hflip(once)
    np.testing.assert_array_equal(twice.image, s.image)
    np.testing.assert_allclose(twice.boxes, s.boxes)
    np.testing.assert_allclose(twice.landmarks[0], s.landmarks[0])
    assert np.all(twice.landmarks[1] == 0)  # missing landmarks stay marked missing


@pytest.mark.parametrize("seed", range(8))
def test_augment_keeps_boxes_inside_and_landmarks_with_their_faces(seed):
    config = AugmentConfig(size=160)
    out = augment(_sample(), np.random.default_rng(seed), config)
    assert out.image.shape == (160, 160, 3)
    assert np.all(out.boxes >= 0) and np.all(out.boxes <= 160)
    for box, points, has in zip(out.boxes, out.landmarks, out.has_landmarks, strict=True):
        if has:  # the face's own landmarks lie within (a margin of) its box
            centre = points.mean(0)
            assert box[0] - 5 <= centre[0] <= box[2] + 5 and box[1] - 5 <= centre[1] <= box[3] + 5
            assert points[0, 0] < points[1, 0]


def test_augment_is_reproducible_from_its_seed():
    a = augment(_sample(), np.random.default_rng(5), AugmentConfig(size=128))
    b = augment(_sample(), np.random.default_rng(5), AugmentConfig(size=128))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_crop_keeps_only_faces_whose_centre_is_inside():
    s = _sample()
    for seed in range(20):
        out = random_square_crop(s, np.random.default_rng(seed), AugmentConfig())
        side = out.image.shape[0]
        assert out.image.shape[1] == side and 0.3 * 300 - 1 <= side <= 300
        assert 1 <= len(out.boxes) <= 2


def test_schedule_scales_with_epochs():
    from retinakit.training.loop import TrainConfig

    paper = TrainConfig(labels="x", images="y")
    assert paper.schedule() == (5, (55, 68))
    assert paper.lr_at(0) == pytest.approx(1e-3) and paper.lr_at(5) == pytest.approx(1e-2)
    assert paper.lr_at(60) == pytest.approx(1e-3) and paper.lr_at(70) == pytest.approx(1e-4)
    short = TrainConfig(labels="x", images="y", epochs=16)
    assert short.schedule() == (1.0, (11, 14))


TWO_IMAGES = (
    "1--Handshaking/1_Handshaking_Handshaking_1_483.jpg",
    "1--Handshaking/1_Handshaking_Handshaking_1_666.jpg",
)


def _two_image_labels(root, tmp_path):
    """A label.txt holding only the TWO_IMAGES entries of the train subset."""
    labels = tmp_path / "label.txt"
    keep, out = False, []
    for line in (root / "label.txt").read_text().splitlines():
        if line.startswith("#"):
            keep = line[1:].strip() in TWO_IMAGES
        if keep:
            out.append(line)
    labels.write_text("\n".join(out) + "\n")
    return labels


@pytest.mark.slow
@pytest.mark.parametrize(("context_conv", "num_images"), [("standard", 2), ("deformable", 1)])
def test_overfit_real_images_then_find_their_faces(context_conv, num_images):
    """100 SGD steps from random init on real photos: loss falls >= 90%, faces are found.

    ``deformable``: the same with DCN v2 in the FPN merges and context modules, trained with the
    trainer's parameter groups (offset/mask predictors at 0.1x the learning rate), on the first
    photo only (DCN's sampling makes each step about 2.5x slower on the CPU; the two-photo
    ResNet-50 run is ``benchmarks/training/heavy_model.py``).
    """
    from dataclasses import replace

    from retinakit import Detector
    from retinakit.core.anchors import generate_anchors
    from retinakit.core.boxes import box_iou
    from retinakit.io.annotations import parse_label_txt
    from retinakit.models import build_model
    from retinakit.models.backend import TorchBackend
    from retinakit.models.dcn import offset_mask_parameters
    from retinakit.training.dataset import FaceDataset, collate
    from retinakit.training.loop import parameter_groups

    root = need_shared("data", "widerface", "train-subset")
    anns = [a for a in parse_label_txt(root / "label.txt") if a.image in TWO_IMAGES[:num_images]]
    assert len(anns) == num_images
    config = replace(get_preset("mobilenet0.25"), context_conv=context_conv)
    aug = AugmentConfig(size=320, crop=False, flip=False, photometric=False)
    images, targets = collate([*FaceDataset(anns, root / "images", aug, config.input)])
    torch.manual_seed(0)
    model = build_model(config).train()
    loss_fn = MultiTaskLoss(get_loss_preset("biubug6"), config.anchors.variances)
    anchors = torch.from_numpy(generate_anchors(config.anchors, 320, 320).copy())
    optimizer = torch.optim.SGD(parameter_groups(model, 0.01, 0.0), lr=0.01, momentum=0.9)
    offsets = offset_mask_parameters(model)
    assert len(offsets) == (2 * (2 + 3 * 5) if context_conv == "deformable" else 0)  # weight + bias per DCN
    history = []
    for _ in range(100):
        losses = loss_fn(model(images), targets, anchors)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append(losses["total"].item())
    assert history[-1] <= 0.1 * history[0]
    detector = Detector(score_threshold=0.5, backend_instance=TorchBackend(model=model))
    mean = np.array(config.input.mean, np.float32)
    for image, target in zip(images, targets, strict=True):
        bgr = np.clip(image.numpy().transpose(1, 2, 0) + mean, 0, 255).astype(np.uint8)
        faces = detector.detect_bgr([bgr])[0]
        assert len(faces) >= len(target["boxes"])
        assert np.all(box_iou(target["boxes"].numpy(), faces.boxes).max(axis=1) >= 0.5)
    assert all(p.abs().max() > 0 for p in offsets)  # the deformation was learned, not left at zero


def test_parameter_groups_put_dcn_offsets_at_a_tenth_of_the_lr_under_the_schedule():
    from dataclasses import replace

    from retinakit.models import build_model
    from retinakit.models.dcn import OFFSET_LR_MULT, offset_mask_parameters
    from retinakit.training.loop import TrainConfig, parameter_groups

    assert OFFSET_LR_MULT == 0.1
    plain = build_model("mobilenet0.25")
    groups = parameter_groups(plain, 0.01, 5e-4)
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(0.01, 5e-4), (0.01, 0.0)]
    assert sum(len(g["params"]) for g in groups) == len(list(plain.parameters()))

    model = build_model(replace(get_preset("mobilenet0.25"), context_conv="deformable"))
    groups = parameter_groups(model, 0.01, 5e-4)
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [
        (0.01, 5e-4),
        (0.01, 0.0),
        (pytest.approx(0.001), 5e-4),
        (pytest.approx(0.001), 0.0),
    ]
    ids = [[id(p) for p in g["params"]] for g in groups]
    assert sorted(i for g in ids for i in g) == sorted(id(p) for p in model.parameters())  # each exactly once
    offsets = offset_mask_parameters(model)
    by_id = {id(p): name for name, p in model.named_parameters()}
    assert {by_id[i] for i in ids[2]} == {by_id[id(p)] for p in offsets if p.ndim == 4}
    assert {by_id[i] for i in ids[3]} == {by_id[id(p)] for p in offsets if p.ndim == 1}
    assert all(name.endswith("offset_mask.weight") for name in (by_id[i] for i in ids[2]))
    assert not any("offset_mask" in by_id[i] for i in ids[0] + ids[1])

    # the trainer's schedule (LambdaLR) scales each group's own lr: offsets stay at 0.1x throughout
    config = TrainConfig(labels="x", images="y", epochs=8).resolved()
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: config.lr_at(step / 10) / config.lr)
    for step in range(80):
        lrs = [g["lr"] for g in optimizer.param_groups]
        assert lrs[0] == pytest.approx(config.lr_at(step / 10))
        assert lrs == pytest.approx([lrs[0], lrs[0], 0.1 * lrs[0], 0.1 * lrs[0]])
        optimizer.step()
        scheduler.step()
    assert lrs[0] < config.lr  # past a milestone


@pytest.mark.parametrize("deformable", [None, pytest.param(True, marks=pytest.mark.slow)])
def test_train_loop_checkpoints_resumes_and_exports(tmp_path, deformable):
    """Also with DCN: the offsets' extra optimizer groups are saved and resumed."""
    from dataclasses import replace

    from retinakit.models.checkpoints import load_model
    from retinakit.training.loop import TrainConfig, train

    root = need_shared("data", "widerface", "train-subset")
    labels = _two_image_labels(root, tmp_path)
    config = TrainConfig(
        labels=str(labels),
        images=str(root / "images"),
        out=str(tmp_path / "run"),
        epochs=2,
        batch_size=2,
        image_size=160,
        workers=0,
        log_every=1,
        device="cpu",
        deformable=deformable,
    )
    first = TrainConfig(**{**config.__dict__, "epochs": 1})
    train(first)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 0 and {"model", "optimizer", "scheduler", "config"} <= set(ckpt)
    lrs = [g["lr"] for g in ckpt["optimizer"]["param_groups"]]
    assert len(lrs) == (4 if deformable else 2) and lrs[1] == lrs[0]
    assert lrs[2:] == pytest.approx([0.1 * lrs[0]] * (len(lrs) - 2))
    final = train(TrainConfig(**{**config.__dict__, "resume": True}))  # continues with epoch 1 only
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    summaries = [r["epoch"] for r in records if r.get("summary")]
    assert summaries == [0, 1]
    assert all({"cls", "box", "landmarks", "total", "lr"} <= set(r) for r in records if not r.get("summary"))
    model = load_model(final)
    assert model.config == replace(get_preset("mobilenet0.25"), context_conv="deformable" if deformable else "standard")
    assert load_model(tmp_path / "run" / "last.pt").config == model.config  # detect --weights last.pt works too


def test_init_from_backbone_and_bad_init(tmp_path):
    from retinakit.models import build_model
    from retinakit.training.loop import initialise

    path = need_shared("weights", "mobilenetV1X0.25_pretrain.tar")
    model = build_model("mobilenet0.25")
    initialise(model, f"backbone:{path}")
    raw = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(model.backbone.stage3[1][3].weight, raw["module.stage3.1.3.weight"])
    with pytest.raises(ValueError, match="init must be"):
        initialise(model, "imagenet")


def test_unfolding_builtin_batchnorm_keeps_the_function():
    """The folded built-in weights are re-parameterised for training without changing outputs."""
    from retinakit.inference.backends import builtin_weights
    from retinakit.models.batchnorm import conv_bn_pairs, unfold_batchnorm
    from retinakit.models.checkpoints import load_model

    model = load_model(builtin_weights("safetensors"))
    torch.manual_seed(0)
    batches = [torch.randn(2, 3, 96, 128) * 60 for _ in range(2)]
    with torch.no_grad():
        before = model(batches[0])
    assert unfold_batchnorm(model, batches) == len(conv_bn_pairs(model)) == 47
    with torch.no_grad():
        after = model(batches[0])
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(b, a, atol=2e-3, rtol=1e-3)
    conv, norm = conv_bn_pairs(model)[0]
    assert torch.allclose(conv.weight.flatten(1).norm(dim=1), torch.ones(conv.out_channels), atol=1e-5)
    assert norm.running_var.mean() > 0.0  # statistics were measured, not left at the folded identity
    model.train()  # batch statistics now match the running ones: train mode gives nearly the same outputs
    with torch.no_grad():
        train_mode = model(batches[0])
    assert (train_mode.logits - before.logits).abs().mean() < 0.25 * before.logits.abs().mean()


def test_training_from_builtin_starts_from_the_builtin_function(tmp_path):
    """The first training loss from --init builtin equals the built-in model's loss on that batch.

    Without re-parameterising the folded BatchNorm first, train-mode BatchNorm would rescale every
    activation: the first loss would be several times larger and fine-tuning would wreck the model.
    """
    from retinakit.core.anchors import generate_anchors
    from retinakit.inference.backends import builtin_weights
    from retinakit.io.annotations import parse_label_txt
    from retinakit.models.checkpoints import load_model
    from retinakit.training.dataset import FaceDataset, collate
    from retinakit.training.loop import TrainConfig, train

    root = need_shared("data", "widerface", "train-subset")
    labels = _two_image_labels(root, tmp_path)
    config = TrainConfig(
        labels=str(labels),
        images=str(root / "images"),
        out=str(tmp_path / "run"),
        init="builtin",
        loss="biubug6",
        epochs=1,
        batch_size=2,
        image_size=320,
        lr=1e-12,
        warmup_lr=1e-12,
        workers=0,
        log_every=1,
        unfold_batches=1,
        device="cpu",
    )
    train(config)
    first = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[0])
    # the same two augmented samples (augmentation is seeded by (seed, epoch, index)), built-in model, eval mode
    model_config = get_preset("mobilenet0.25")
    anns = sorted(parse_label_txt(labels), key=lambda a: a.image)  # the trainer takes images in name order
    dataset = FaceDataset(anns, root / "images", AugmentConfig(size=320), model_config.input)
    images, targets = collate([dataset[0], dataset[1]])
    anchors = torch.from_numpy(generate_anchors(model_config.anchors, 320, 320).copy())
    with torch.no_grad():
        expected = MultiTaskLoss(get_loss_preset("biubug6"), V)(
            load_model(builtin_weights("safetensors"))(images), targets, anchors
        )
    assert first["total"] == pytest.approx(expected["total"].item(), rel=0.3)


def test_train_flags_map_onto_train_config_fields():
    from dataclasses import fields

    from retinakit.cli import build_parser
    from retinakit.training.loop import TrainConfig

    args = build_parser().parse_args(["train", "--data", "l.txt", "--images", "im", "--dcn-offset-lr-mult", "0.2"])
    names = {f.name for f in fields(TrainConfig)}
    assert set(vars(args)) - names == {"command", "func", "no_progress", "check"}  # all other flags are fields
    assert args.dcn_offset_lr_mult == 0.2
    assert TrainConfig(labels="l", images="i").dcn_offset_lr_mult == 0.1


def test_fine_tuning_recipe_fills_only_what_is_not_given():
    from retinakit.training.loop import RECIPES, TrainConfig

    tune = TrainConfig(labels="l", init="builtin").resolved()
    recipe = RECIPES["finetune"]
    assert (tune.recipe, tune.lr, tune.warmup_lr, tune.epochs, tune.loss) == (
        "finetune", recipe.lr, recipe.warmup_lr, recipe.epochs, "biubug6"
    )  # fmt: skip
    assert tune.freeze_bn is recipe.freeze_bn and tune.grad_clip == recipe.grad_clip and tune.milestones == ()
    assert TrainConfig(labels="l", init="checkpoint:x.pt").resolved().recipe == "finetune"
    mine = TrainConfig(labels="l", init="builtin", lr=5e-4, freeze_bn=False, loss="paper").resolved()
    assert (mine.lr, mine.freeze_bn, mine.loss) == (5e-4, False, "paper")
    scratch = TrainConfig(labels="l").resolved()
    assert (scratch.recipe, scratch.lr, scratch.epochs, scratch.freeze_bn, scratch.grad_clip) == (
        "scratch", 1e-2, 80, False, None
    )  # fmt: skip
    # the run: one epoch of 20 steps reached lr 0.01 at once; the fine-tune recipe warms up
    assert TrainConfig(labels="l", init="builtin", epochs=1).lr_at(0.1) < 0.6 * recipe.lr


def _short_run(tmp_path, name, labels, **extra):
    from retinakit.training.loop import TrainConfig, train

    config = TrainConfig(
        labels=str(labels),
        out=str(tmp_path / name),
        init="builtin",
        epochs=1,
        batch_size=1,
        image_size=160,
        workers=0,
        log_every=1,
        unfold_batches=1,
        max_steps_per_epoch=2,
        device="cpu",
        **extra,
    )
    train(config)
    return [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]


def test_a_short_fine_tune_logs_the_same_losses_from_label_txt_coco_and_yolo(tmp_path):
    from retinakit.io.labels import LabelOptions, read_labels, write_labels

    root = need_shared("data", "widerface", "train-subset")
    labels = _two_image_labels(root, tmp_path)  # the trainer takes images in name order, whatever the format
    original = read_labels(labels, LabelOptions(images=str(root / "images")))
    write_labels(original, "coco", tmp_path / "two.json")
    write_labels(original, "yolo", tmp_path / "yolo")
    runs = {
        "retinaface": _short_run(tmp_path, "a", labels, images=str(root / "images")),
        "coco": _short_run(tmp_path, "b", tmp_path / "two.json", images=str(root / "images")),
        "yolo": _short_run(tmp_path, "c", tmp_path / "yolo" / "data.yaml"),
    }
    steps = {k: [r for r in v if "step" in r] for k, v in runs.items()}
    assert len(steps["retinaface"]) == 2 and steps["retinaface"][0]["landmarks"] > 0  # these images have landmarks
    for fmt in ("coco", "yolo"):
        for a, b in zip(steps["retinaface"], steps[fmt], strict=True):
            for key in ("cls", "box", "landmarks", "total"):
                assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-5), (fmt, key)


def test_a_nan_loss_is_reported_in_one_line_with_the_step(tmp_path, monkeypatch, capsys):
    from retinakit.cli import main
    from retinakit.training import loop

    root = need_shared("data", "widerface", "train-subset")
    labels = _two_image_labels(root, tmp_path)
    real = loop.MultiTaskLoss.__call__
    calls = []

    def nan_on_second_step(self, *args, **kwargs):
        losses = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(loop.MultiTaskLoss, "__call__", nan_on_second_step)
    argv = ["train", "--data", str(labels), "--images", str(root / "images"), "--out", str(tmp_path / "run")]
    argv += ["--init", "builtin", "--epochs", "1", "--batch-size", "1", "--image-size", "160", "--workers", "0"]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 1
    labels_line, err = capsys.readouterr().err.strip().splitlines()  # the labels summary, then the error alone
    assert labels_line == "labels: 2 images, 4 faces (4 with landmarks)" and "Traceback" not in err
    assert err.startswith("retinakit train: error: loss became total nan at epoch 0 step 2 (lr ")
    assert "try a lower --lr" in err


@pytest.mark.parametrize(("scores", "kept"), [((50.0, 40.0), "start"), ((40.0, 50.0), "trained")])
def test_validation_before_and_after_keeps_the_better_weights(tmp_path, monkeypatch, scores, kept):
    from safetensors.torch import load_file

    from retinakit.training import loop

    root = need_shared("data", "widerface", "train-subset")
    labels = _two_image_labels(root, tmp_path)
    figures = iter(scores)
    monkeypatch.setattr(loop, "evaluate_during_training", lambda model, config: {"all": next(figures)})
    records = _short_run(tmp_path, "run", labels, images=str(root / "images"), val_labels=str(labels), lr=1e-2)
    val = [r for r in records if "val_ap" in r]
    assert [r["when"] for r in val] == ["before training", "after training"]
    assert [r for r in records if "best" in r] == [
        {"best": kept, "val_before": scores[0], "val_after": scores[1]}
    ]  # fmt: skip
    final, last = load_file(tmp_path / "run" / "model.safetensors"), load_file(tmp_path / "run" / "last.safetensors")
    same = all(torch.equal(final[k], last[k]) for k in final)
    assert same == (kept == "trained")
