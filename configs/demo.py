r"""Demo: every PUT + FDM training phase, briefly, on built-in images. The main job of the README.

    python train.py                                   # = --config configs/demo.py --workdir runs/demo

Trains the four phases in order (codec -> sampler -> fdm -> fdm_tuning, each in runs/demo/<phase>,
each starting from the previous ones) on scikit-image's sample photographs (shipped inside the
scikit-image wheel: no download, no data folder), then writes runs/demo/inpainted_samples.png:
pluralistic inpaintings of those images by the trained sampler + FDM. It takes a few minutes on a
laptop CPU. It reproduces nothing from the paper: it shows that the whole pipeline trains, checkpoints,
resumes (run the command again after Ctrl-C) and samples.

What differs from configs/paris.py:tiny (the fixtures' model sizes at 64x64), and why:
  * data.source 'demo': the scikit-image images instead of Paris StreetView;
  * masks: stroke masks only in every phase (the NVIDIA masks are a separate download); the paper's
    phases 2-3 use NVIDIA masks only;
  * no perceptual/style terms (no VGG weights are bundled): g_content = g_style = 0;
  * short schedules: run.max_steps iterations per phase with warm-ups of 10 and the discriminator
    starting at iteration 20, so every loss term and both optimizers run within the demo;
  * global batch 8 (divisible by 1, 2, 4 and 8 devices);
  * sampling.top_k 2 instead of 50: after a minute of training the codebook uses a handful of codes,
    and the original's EMA update divides every never-used code's embedding_avg by a cluster size of
    about eps = 1e-5 (image_codec/vector_quantizer.py: cluster_size starts at zeros), so those codes
    have norms around 1e5 (measured in the demo: ~3e5); a barely trained sampler still gives them
    probability, and top-50 sampling then decodes garbage. The paper's setting trains long enough for
    this not to matter; the demo keeps the two most likely codes.
"""

from fdm_jax.cli.config_loading import load_sibling


def get_config(arg=None):
    """Demo config. `arg`: None or '' only."""
    if arg not in (None, ""):
        raise ValueError(f"configs/demo.py: unknown config variant {arg!r}; valid variants: '' (the demo)")
    config = load_sibling(__file__, "paris.py").get_config("tiny")
    cm = load_sibling(__file__, "put_fdm_common.py")

    config.phase = "all"
    config.data.name = "demo"
    config.data.source = "demo"
    for stage in cm.PHASES:
        m = config.masks[stage]
        m.provided_mask_only = False
        m.provided_mask_prob = 0.0  # stroke masks only
    config.perceptual.backbone = "none"
    config.sampling.top_k = 2
    for phase in cm.PHASES:
        t = config.train[phase]
        t.warmup_steps = 10
        t.num_epochs = 30  # T_max = 30 epochs of the demo images; run.max_steps stops earlier
        t.init_from = {"codec": "", "sampler": "{run}/codec", "fdm": "{run}/codec",
                       "fdm_tuning": "{run}/fdm"}[phase]
        if t.loss.kind != "token_ce":
            t.loss.g_content = 0.0
            t.loss.g_style = 0.0
            if t.loss.kind != "qe":
                t.loss.disc_start = 20
                t.loss.gradient_start = 10
        if t.disc.enabled:
            t.disc.start_iteration = 20
            t.disc.warmup_steps = 10
    r = config.run
    r.max_steps = 60
    r.global_batch_size = 8
    r.log_every = 5
    r.checkpoint_every = 20
    r.sample_every = 30
    r.sample_images = 4
    return cm.validate(config)
