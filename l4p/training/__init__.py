"""Training: the Lightning task, data module, losses, augmentation, datasets and CLI.

- `module.L4PTask` (LightningModule: losses, metrics, optimiser, schedule, freezing),
- `datamodule.L4PDataModule` (weighted source mixtures; synthetic scenes by default),
- `windows.forward_windows` (differentiable windowed forward for stage 2),
- `losses`, `objective`, `augment`, `freezing`, `sampler`, `metrics`, `datasets/`,
- `cli.main(argv)` (`l4p fit|validate|test`).

Importing this package imports nothing heavy; import the submodules you need.
"""
