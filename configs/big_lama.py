r"""Big-LaMa with multiscale feature refinement: the setting of the refinement paper.

Kulshreshtha, Pugh & Jiddi, "Feature Refinement to Improve High Resolution Image Inpainting"
(arXiv 2206.13644), code geomagical/lama-with-refiner@d4239d8 (branch `refinement`), applied to
Big-LaMa (Suvorov et al., WACV 2022; released checkpoint big-lama.zip -> big-lama/models/best.ckpt,
run b18_ffc075_batch8x15, about 51M parameters).

What it reproduces. The original command
    python bin/predict.py refine=True model.path=$(pwd)/big-lama indir=IN outdir=OUT refiner.gpu_ids="0,"
(configs/prediction/default.yaml; the default gpu_ids "0,1" needs two GPUs) refines 1024x1024 inputs at
one extra scale (512 -> 1024: 15 rear forwards, 14 Adam steps). The paper's Table 1 (1k Unsplash-Lite
images at 1024x1024, LaMa's thin/medium/thick masks, FID/LPIPS; RTX A5000) reports for Big-LaMa +
refinement FID 13.193 / 19.864 / 26.401, LPIPS 0.112 / 0.115 / 0.135 and 4.56 s per image (Big-LaMa
alone: 13.143 / 21.169 / 29.022, 0.114 / 0.116 / 0.140, 0.26 s); `config.reference` holds these. The
Unsplash sample is not available here; the thin/medium/thick mask generators are
(`config.eval_masks`, fdm_jax.data.lama_masks).

Commands with this port:
    python -m fdm_jax.parity ../shared/fixtures/lama/*.npz          # the ':tiny' sizes vs the original
    python benchmarks/refine.py --config configs/big_lama.py --sizes 512,1024,2048
    python benchmarks/refine.py --config configs/big_lama.py:tiny --sizes 256 --n-iters 3   # CI size
  Weights: fdm_jax.convert.lama.load_generator("big-lama/models/best.ckpt", model) reads the Lightning
  checkpoint without torch. Parameter count: fdm_jax.lama.generator.count_parameters
  (50,975,875 trainable for this config, as counted on the original FFCResNetGenerator).

Variants (`get_config(arg)`, or `configs/big_lama.py:tiny`):
    ''     Big-LaMa and the refiner exactly as released.
    'tiny' ngf 16 and 2 resblocks, refiner min_side 32: the sizes of shared/fixtures/lama/
           (ffc_generator_small, refine_small), for CPU tests.

Every constant names its source: files are of geomagical/lama-with-refiner@d4239d8; "paper" is
Kulshreshtha, Pugh & Jiddi 2022, arXiv 2206.13644.
"""

import ml_collections

VARIANTS = {
    "": "Big-LaMa + refiner as released (also selected by arg=None)",
    "tiny": "ngf 16, 2 resblocks, refiner min_side 32: the shared/fixtures/lama sizes, for CPU tests",
}


def _mask_config(min_size, irregular, box, box_proba):
    """A configs/data_gen/random_*.yaml, in the original's own layout
    (fdm_jax.data.lama_masks.MaskDatasetConfig.from_original reads it)."""
    c = ml_collections.ConfigDict()
    c.generator_kind = "random"
    g = c.mask_generator_kwargs = ml_collections.ConfigDict()
    g.irregular_proba = 1
    g.irregular_kwargs = ml_collections.ConfigDict(dict(zip(
        ("min_times", "max_times", "max_width", "max_angle", "max_len"), irregular)))
    g.box_proba = box_proba
    if box is not None:
        g.box_kwargs = ml_collections.ConfigDict(dict(zip(
            ("margin", "bbox_min_size", "bbox_max_size", "max_times", "min_times"), box)))
    g.segm_proba = 0
    g.squares_proba = 0
    g.variants_n = 5
    c.max_masks_per_image = 1
    c.cropping = ml_collections.ConfigDict(dict(out_min_size=min_size, handle_small_mode="upscale",
                                                out_square_crop=True, crop_min_overlap=1))
    c.max_tamper_area = 0.5
    return c


def get_config(arg=None):
    variant = "" if arg is None else str(arg).strip()
    if variant not in VARIANTS:
        valid = ", ".join(f"{k!r} ({v})" for k, v in VARIANTS.items())
        raise ValueError(f"configs/big_lama.py: unknown variant {arg!r}; valid variants: {valid}")

    config = ml_collections.ConfigDict()
    config.model_name = "lama"

    # ---------------------------------------------------------------- generator (FFCResNetGenerator)
    g = config.model = ml_collections.ConfigDict()
    g.input_nc = 4  # configs/training/big-lama.yaml: generator.input_nc (RGB*(1-m) + mask, concat_mask)
    g.output_nc = 3  # big-lama.yaml: generator.output_nc
    g.ngf = 64  # big-lama.yaml: generator.ngf
    g.n_downsampling = 3  # big-lama.yaml: generator.n_downsampling
    g.n_blocks = 18  # big-lama.yaml: generator.n_blocks
    g.max_features = 1024  # ffc.py: FFCResNetGenerator(max_features=1024) default
    g.init_ratio_gin = 0.0  # big-lama.yaml: init_conv_kwargs.ratio_gin
    g.init_ratio_gout = 0.0  # big-lama.yaml: init_conv_kwargs.ratio_gout
    g.downsample_ratio_gin = 0.0  # big-lama.yaml: downsample_conv_kwargs.ratio_gin = ${init_conv_kwargs.ratio_gout}
    g.downsample_ratio_gout = 0.0  # big-lama.yaml: downsample_conv_kwargs.ratio_gout = ${downsample_conv_kwargs.ratio_gin}
    g.resnet_ratio_gin = 0.75  # big-lama.yaml: resnet_conv_kwargs.ratio_gin
    g.resnet_ratio_gout = 0.75  # big-lama.yaml: resnet_conv_kwargs.ratio_gout = ${resnet_conv_kwargs.ratio_gin}
    g.out_activation = "sigmoid"  # big-lama.yaml: generator.add_out_act
    g.remat = False  # this port: jax.checkpoint per resblock (memory for the refiner; no numerical change)

    # ---------------------------------------------------------------- checkpoint
    # original: checkpoint = "big-lama/models/best.ckpt" (configs/prediction/default.yaml: model.checkpoint under model.path/models)
    # original: state_dict_prefix = "generator." (trainers/base.py: the generator's keys in the Lightning state_dict)

    # ---------------------------------------------------------------- plain prediction (bin/predict.py)
    # original: pad_out_to_modulo = 8 (configs/prediction/default.yaml: dataset.pad_out_to_modulo)
    # original: pad_mode = "symmetric" (evaluation/data.py pad_img_to_modulo: np.pad(mode='symmetric'))
    # original: out_key = "inpainted" (configs/prediction/default.yaml: out_key (known pixels copied back))

    # ---------------------------------------------------------------- refiner (refinement.py)
    r = config.refiner = ml_collections.ConfigDict()
    r.modulo = 8  # configs/prediction/default.yaml: refiner.modulo = ${dataset.pad_out_to_modulo}
    r.n_iters = 15  # configs/prediction/default.yaml: refiner.n_iters
    r.lr = 0.002  # configs/prediction/default.yaml: refiner.lr (paper §3: Adam, lr 0.002)
    r.min_side = 512  # configs/prediction/default.yaml: refiner.min_side
    r.max_scales = 3  # configs/prediction/default.yaml: refiner.max_scales (never reached within px_budget)
    r.px_budget = 1_800_000  # configs/prediction/default.yaml: refiner.px_budget

    # ---------------------------------------------------------------- evaluation masks (configs/data_gen)
    m = config.eval_masks = ml_collections.ConfigDict()
    # (min_times, max_times, max_width, max_angle, max_len); (margin, bbox_min, bbox_max, max_times, min_times)
    m.random_thin_256 = _mask_config(256, (4, 50, 10, 4, 40), None, 0)  # configs/data_gen/random_thin_256.yaml
    m.random_medium_256 = _mask_config(256, (4, 5, 50, 4, 100), (0, 10, 50, 5, 1), 0.3)  # random_medium_256.yaml
    m.random_thick_256 = _mask_config(256, (1, 5, 100, 4, 200), (10, 30, 150, 3, 1), 0.3)  # random_thick_256.yaml
    m.random_thin_512 = _mask_config(512, (4, 70, 20, 4, 100), None, 0)  # configs/data_gen/random_thin_512.yaml
    m.random_medium_512 = _mask_config(512, (4, 10, 100, 4, 200), (0, 30, 150, 5, 1), 0.3)  # random_medium_512.yaml
    m.random_thick_512 = _mask_config(512, (1, 5, 250, 4, 450), (10, 30, 300, 4, 1), 0.3)  # random_thick_512.yaml

    # ---------------------------------------------------------------- paper numbers (Table 1)
    ref = config.reference = ml_collections.ConfigDict()
    ref.source = ("Kulshreshtha et al. 2022 (arXiv 2206.13644) Table 1: 1k Unsplash-Lite images at 1024x1024, "
                  "LaMa thin/medium/thick masks; time per image on one RTX A5000")
    ref.fid_thin, ref.fid_medium, ref.fid_thick = 13.193, 19.864, 26.401  # Table 1, Big-LaMa+refinement (ours)
    ref.lpips_thin, ref.lpips_medium, ref.lpips_thick = 0.112, 0.115, 0.135  # Table 1, Big-LaMa+refinement (ours)
    # original: seconds_per_image_refined = 4.56 (Table 1, Big-LaMa+refinement (ours))
    # Table 1, Big-LaMa (no refinement): FID thin / medium / thick 13.143 / 21.169 / 29.022,
    # LPIPS 0.114 / 0.116 / 0.140 (the docstring quotes them; the table rows above are the refined ones)
    # original: seconds_per_image_plain = 0.26 (Table 1, Big-LaMa)
    ref.parameters = 50_975_875  # trainable parameters of the original FFCResNetGenerator(big-lama.yaml), ~51M

    if variant == "tiny":
        g.ngf = 16  # shared/fixtures/lama/ffc_generator_small.npz meta.kwargs.ngf
        g.n_blocks = 2  # ffc_generator_small.npz meta.kwargs.n_blocks
        r.min_side = 32  # shared/fixtures/lama/refine_small.npz meta.kwargs.min_side (3 levels at 124x180)
        ref.parameters = None  # no published count for the reduced model
    return config
