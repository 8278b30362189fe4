"""Training: CLI fit on configs/tiny.yaml, exact resume, freezing, windows, metrics, network init."""

import csv
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from l4p.build import build_model
from l4p.checkpoints.own import save_pretrained
from l4p.training.cli import main, run_cli
from l4p.training.datamodule import L4PDataModule
from l4p.training.metrics import batch_metrics
from l4p.training.module import L4PTask
from l4p.training.network import NetworkFactory
from l4p.training.objective import compute_losses, total_loss
from l4p.training.windows import WindowedOutputs, forward_windows

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter:UserWarning")

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.yaml")
SMALL = ["--data.height", "28", "--data.width", "28", "--trainer.limit_val_batches", "0"]


def _rows(root: Path) -> list[dict[str, str]]:
    (path,) = root.glob("logs/version_*/csv/metrics.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_fit_tiny_config_through_cli(tmp_path):
    assert main(["fit", "--config", TINY, "--trainer.default_root_dir", str(tmp_path)]) == 0
    assert list(tmp_path.glob("logs/version_0/events.out.tfevents.*")), "no TensorBoard log"
    assert (tmp_path / "logs/version_0/checkpoints/last.ckpt").is_file()
    rows = _rows(tmp_path)
    train = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(train) == 2 and all(math.isfinite(v) for v in train)
    val = next(r for r in rows if r.get("val/loss"))
    for name in ("abs_rel", "delta1", "epe", "aj", "oa", "motion_iou", "loss_camera"):
        assert math.isfinite(float(val[f"val/{name}"])), name
    assert 0.0 <= float(val["val/delta1"]) <= 1.0 and 0.0 <= float(val["val/oa"]) <= 1.0


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    common = [
        "--config",
        TINY,
        *SMALL,
        "--data.samples_per_epoch",
        "2",
        "--model.warmup_steps",
        "2",
        "--model.min_lr_ratio",
        "1.0",
    ]
    main(["fit", *common, "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path / "a")])
    main(["fit", *common, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "b")])
    first = tmp_path / "b/logs/version_0/checkpoints/last.ckpt"
    main(
        [
            "fit",
            *common,
            "--trainer.max_epochs",
            "2",
            "--trainer.default_root_dir",
            str(tmp_path / "b"),
            "--ckpt_path",
            str(first),
        ]
    )
    full = _weights(tmp_path / "a/logs/version_0/checkpoints/last.ckpt")
    resumed = _weights(tmp_path / "b/logs/version_1/checkpoints/last.ckpt")
    stopped = _weights(first)
    assert any(not torch.equal(full[k], stopped[k]) for k in full), "second epoch changed nothing"
    for key, value in full.items():
        assert torch.allclose(value, resumed[key], rtol=1e-6, atol=1e-7), key
    # a later stage starts from a Lightning checkpoint, with a new random head if asked
    network = NetworkFactory(variant="l4p_test", checkpoint=str(first), new_heads=("motion",)).build()
    for key, value in network.state_dict().items():
        assert torch.equal(value, stopped[f"model.{key}"]) != key.startswith("heads.motion."), key


def _fit_and_compare(args: list[str]):
    cli = run_cli(args, run=False)
    before = {k: v.clone() for k, v in cli.model.model.state_dict().items()}
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    after = cli.model.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    return cli, before, changed


def test_stage2_windows_freeze_all_but_last_blocks_and_tracker(tmp_path):
    args = ["--config", TINY, *SMALL, "--trainer.default_root_dir", str(tmp_path), "--data.num_frames", "16",
            "--data.max_query_frame", "8", "--model.tasks", "[tracks]", "--model.trainable_encoder_blocks", "3",
            "--model.trainable_heads", "[tracks]", "--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]"]  # fmt: skip
    cli, before, changed = _fit_and_compare(args)
    trainable = tuple(cli.model.prefixes)
    assert trainable == (
        "encoder.blocks.1.",
        "encoder.blocks.2.",
        "encoder.blocks.3.",
        "encoder.norm.",
        "tracker.",
    )
    frozen = [k for k in before if not k.startswith(trainable)]
    assert frozen and not (changed & set(frozen)), "a frozen parameter moved"
    assert any(k.startswith("tracker.history_proj") for k in changed), "cross-window memory got no update"
    assert any(k.startswith("encoder.blocks.3.") for k in changed)


def test_add_head_trains_only_the_new_motion_head(tmp_path):
    source = build_model("l4p_test", tasks=("depth", "flow", "tracks"))
    folder = save_pretrained(source, tmp_path / "base")
    args = ["--config", TINY, *SMALL, "--trainer.default_root_dir", str(tmp_path), "--network.checkpoint",
            str(folder / "model.safetensors"), "--network.tasks", "[depth, flow, motion, tracks]", "--network.new_heads",
            "[motion]", "--model.tasks", "[motion]", "--model.trainable_encoder_blocks", "0", "--model.trainable_heads",
            "[motion]", "--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]"]  # fmt: skip
    cli, before, changed = _fit_and_compare(args)
    for key, value in source.state_dict().items():
        assert torch.equal(before[key], value), f"{key} not loaded from the checkpoint"
    assert changed and all(k.startswith("heads.motion.") for k in changed)


def _tiny_batch(num_frames=16):
    data = L4PDataModule(
        num_frames=num_frames, height=28, width=28, num_tracks=4, batch_size=2, max_query_frame=8
    )
    return next(iter(data.val_dataloader()))


def test_windowed_forward_gives_every_parameter_a_gradient():
    model = build_model("l4p_test")
    batch = _tiny_batch()
    tasks = ("depth", "flow", "motion", "camera", "tracks")
    out = forward_windows(
        model, batch["rgb_tchw"], tasks=tasks, window=8, stride=4, queries_bn3=batch["queries_n3"]
    )
    assert out.starts == [0, 4, 8] and len(out.tracks.windows) == 3
    assert out.tracks.traj.shape == (2, 4, 16, 2) and out.dense[2].flow.shape == (2, 8, 2, 28, 28)
    losses = compute_losses(out, batch, patch=14)
    assert set(losses) == {
        "depth", "flow", "motion", "camera", "track_position", "track_heatmap", "visibility", "track_depth",
        "track_match",
    }  # fmt: skip
    total_loss(losses, {k: 1.0 for k in losses}).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_head_tracks_decodes_the_first_tracks_and_matches_all_of_them():
    torch.manual_seed(0)
    task = L4PTask(
        model=build_model("l4p_test"), tasks=("depth", "tracks"), window=8, stride=4, head_tracks=2
    )
    batch = _tiny_batch(num_frames=8)
    assert batch["queries_n3"].shape[1] == 4
    out = task(batch)
    assert out.tracks.traj.shape[1] == 2  # only the first two tracks go through the head
    base = compute_losses(out, batch, patch=14)
    # Moving the ground truth of the tracks the head did not decode changes only `track_match`.
    moved = dict(batch)
    moved["tracks_tn2"] = batch["tracks_tn2"].clone()
    moved["tracks_tn2"][:, 1:, 2:] += 9.0
    changed = compute_losses(out, moved, patch=14)
    assert not torch.allclose(changed["track_match"], base["track_match"])
    for name in ("track_position", "track_heatmap", "visibility", "track_depth"):
        assert torch.equal(changed[name], base[name]), name
    # Validation scores the decoded tracks against their own ground truth.
    assert task.head_batch(batch)["tracks_tn2"].shape[2] == 2


def test_metrics_of_perfect_predictions():
    batch = _tiny_batch(num_frames=8)
    from l4p.heads.tracking.driver import TrackingResult
    from l4p.models.l4p import DenseOutputs

    dense = DenseOutputs(
        depth=batch["depth_thw"].clamp(min=1e-3),
        flow=batch["flow_bwd_t2hw"],
        motion=(batch["motion_thw"] * 2 - 1) * 10,
    )
    tracks = TrackingResult(
        traj=batch["tracks_tn2"].transpose(1, 2) + 0.5,
        vis=(batch["visibility_tn"].float().transpose(1, 2) * 2 - 1) * 10,
        depth=batch["tracks3d_tn3"][..., 2].transpose(1, 2),
    )
    scores = batch_metrics(
        WindowedOutputs(starts=[0], window=8, grid=(4, 2, 2), dense=[dense], tracks=tracks), batch
    )
    assert max(scores["abs_rel"]) < 1e-4 and min(scores["delta1"]) == 1.0
    assert max(scores["epe"]) < 1e-6
    assert min(scores["aj"]) == pytest.approx(1.0) and min(scores["oa"]) == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in scores.get("motion_iou", []))


def test_network_factory_loads_a_videomae_encoder_checkpoint(tmp_path):
    reference = build_model("l4p_test").encoder
    path = tmp_path / "videomae.pth"
    torch.save({"model": {f"encoder.{k}": v for k, v in reference.state_dict().items()}}, path)
    model = NetworkFactory(variant="l4p_test", encoder_checkpoint=str(path)).build()
    for key, value in reference.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key


def test_a_non_finite_gradient_skips_the_update(caplog):
    task = L4PTask(model=build_model("l4p_test"), tasks=("depth",))
    params = [p for p in task.model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer = torch.optim.AdamW(params, lr=1.0)
    task.on_before_optimizer_step(optimizer)  # all finite: gradients kept
    assert all(p.grad is not None for p in params)
    params[3].grad[0] = float("nan")
    before = [p.detach().clone() for p in params]
    task.on_before_optimizer_step(optimizer)
    optimizer.step()
    assert all(p.grad is None for p in params) and "step skipped" in caplog.text
    assert all(torch.equal(a, p) for a, p in zip(before, params))


def test_bf16_fit_on_cpu_is_finite_and_restores_onednn(tmp_path):
    # Seed 2 of the tiny config gave a NaN gradient (oneDNN bf16 Conv3d on the 2x2x2 DPT level).
    args = ["fit", "--config", TINY, "--trainer.precision", "bf16-mixed", "--seed_everything", "2"]
    assert main([*args, "--trainer.default_root_dir", str(tmp_path)]) == 0
    assert torch.backends.mkldnn.enabled
    rows = _rows(tmp_path)
    train = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(train) == 2 and all(math.isfinite(v) for v in train)
    val = next(r for r in rows if r.get("val/loss"))
    assert math.isfinite(float(val["val/loss"])) and math.isfinite(float(val["val/abs_rel"]))


def test_export_writes_float16_weights_that_load_with_neutral_memory(tmp_path):
    from safetensors import safe_open

    from l4p.checkpoints.own import build_and_load
    from l4p.training.export import export_weights

    assert main(["fit", "--config", TINY, *SMALL, "--trainer.default_root_dir", str(tmp_path)]) == 0
    out = export_weights(tmp_path / "logs/version_0/checkpoints/last.ckpt", tmp_path / "w.safetensors",
                         metadata={"license": "Apache-2.0"})  # fmt: skip
    with safe_open(str(out), framework="pt") as f:
        assert f.metadata()["l4p_variant"] == "l4p_test" and f.metadata()["license"] == "Apache-2.0"
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    model = build_and_load("l4p_test", out)
    tracker = model.tracker
    assert torch.count_nonzero(tracker.history_proj.weight) == 0
    assert torch.allclose(tracker.history_proj.bias, tracker.history_mask_token.weight[0])
    labels = tracker.prompt_encoder.feature_label_embed.weight
    assert torch.equal(labels[0], labels[1]) and torch.count_nonzero(tracker.track_feature_proj.weight) == 0


def test_synthetic_small_stage_two_config_overrides_stage_one(tmp_path):
    # The shipped recipe: stage 2 is synthetic_small.yaml with synthetic_small_ft.yaml on top.
    configs = REPO / "configs"
    stage1 = run_cli(["--config", str(configs / "synthetic_small.yaml"), "--trainer.default_root_dir", str(tmp_path)],
                     run=False)  # fmt: skip
    stage2 = run_cli(["--config", str(configs / "synthetic_small.yaml"), "--config", str(configs / "synthetic_small_ft.yaml"),
                      "--trainer.default_root_dir", str(tmp_path)], run=False)  # fmt: skip
    assert stage1.trainer.max_steps == 4500 and stage2.trainer.max_steps == 1250
    assert stage1.datamodule.first_query_prob == 0.0 and stage2.datamodule.first_query_prob == 0.5
    assert stage2.model.hparams.lr < stage1.model.hparams.lr
    assert stage2.datamodule.seed != stage1.datamodule.seed
    assert stage2.model.hparams.loss_weights == stage1.model.hparams.loss_weights  # same objective


class _StopAt(pl.Callback):
    """Stops the run after `step` optimiser steps (as `trainer.max_time` would, between two saves)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def test_last_checkpoint_holds_the_final_step_of_a_run_stopped_between_saves(tmp_path):
    # Lightning's own ModelCheckpoint leaves last.ckpt at the periodic save (step 2 here).
    callbacks = '[{"class_path": "l4p.training.checkpointing.ModelCheckpoint", "init_args": {"save_last": true, "every_n_train_steps": 2, "save_top_k": -1}}]'
    cli = run_cli(["--config", TINY, *SMALL, "--data.samples_per_epoch", "20", "--trainer.max_steps", "10",
                   "--trainer.default_root_dir", str(tmp_path), "--trainer.callbacks", callbacks], run=False)  # fmt: skip
    cli.trainer.callbacks.append(_StopAt(3))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    (last,) = tmp_path.glob("logs/version_*/checkpoints/last.ckpt")
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 3
    for config in (REPO / "configs").glob("*.yaml"):  # every config checkpoints with this class
        assert "pytorch_lightning.callbacks.ModelCheckpoint" not in config.read_text(), config.name
