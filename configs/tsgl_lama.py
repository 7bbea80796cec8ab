r"""TSGL, LaMa variant: "Ours (LaMa)" of Liu et al., "Thinking inside the Convolution for Image Inpainting:
Reconstructing Texture via Structure under Global and Local Side" (code htyjers/ConvInpaint-TSGL@e9f6438,
TSGL_Lama/), at 512x512.

What it reproduces. Table VI (= Table III) of the paper, Places2 512x512 with LaMa's narrow / medium /
wide masks: FID 0.58 / 1.26 / 1.65, LPIPS 0.081 / 0.106 / 0.119, 34.0M parameters, 463.0G "FLOPs"
(`config.reference`). The released Places2 checkpoint (Baidu pan) is not reachable here; the port is
checked against the original code at the ':tiny' sizes (shared/fixtures/tsgl). The paper's 463.0G are
MACs of the test-time generator at 512x512 and its 34.0M the test-time parameters (on the
original modules: 463.37 GMAC, 34,468,035 parameters); `tsgl_summary` gives ours.

Commands with this port:
    python -m fdm_jax.parity ../shared/fixtures/tsgl/tsgl_lama_generator_small.npz        # ':tiny' vs the original
    python -c "from fdm_jax.cli.config_loading import load_config; from fdm_jax.convert.tsgl import tsgl_summary; \
               print(tsgl_summary(load_config('configs/tsgl_lama.py')))"                   # params, GMACs vs paper
  Weights: fdm_jax.convert.tsgl.load_lama_generator('G_0.pth', build_generator(config.model)) reads the
  original DataParallel checkpoint without torch. Inference: the test pipeline (config.data.test) feeds
  the [0, 1] image and Canny/gray of the raw bytes (fdm_jax.tsgl.structure.edge_and_gray(...,
  wraparound=False)); multiscale refinement runs through fdm_jax.tsgl.lama.front_rear(model).

Variants (`get_config(arg)`, or `configs/tsgl_lama.py:tiny`):
    ''     the released model (ngf 64, max_features 256, 9 resblocks) at 512x512.
    'tiny' ngf 3, max_features 12, 2 resblocks, 128x128: shared/fixtures/tsgl/tsgl_lama_generator_small.npz.

Every constant names its source: files are of htyjers/ConvInpaint-TSGL@e9f6438 (TSGL_Lama/...).
"""

import ml_collections

from fdm_jax.cli.config_loading import load_sibling

VARIANTS = {
    "": "TSGL-LaMa as released (also selected by arg=None)",
    "tiny": "ngf 3, max_features 12, 2 resblocks, 128x128: the tsgl_lama_generator_small fixture, for CPU tests",
}


def get_config(arg=None):
    variant = "" if arg is None else str(arg).strip()
    if variant not in VARIANTS:
        valid = ", ".join(f"{k!r} ({v})" for k, v in VARIANTS.items())
        raise ValueError(f"configs/tsgl_lama.py: unknown variant {arg!r}; valid variants: {valid}")

    cm = load_sibling(__file__, "tsgl_common.py")
    config = ml_collections.ConfigDict()
    config.model_name = "tsgl_lama"

    # ---------------------------------------------------------------- generator (FFCResNetGenerator)
    g = config.model = ml_collections.ConfigDict()
    g.name = "tsgl_lama"  # fdm_jax.convert.tsgl.build_generator -> fdm_jax.tsgl.lama.TSGLLamaGenerator
    g.ngf = 64  # test/model.py: FFCResNetGenerator(ngf=64) default; train.py/test.py call FFCResNetGenerator()
    g.max_features = 256  # test/model.py: max_features=256 default
    g.n_blocks = 9  # test/model.py: n_blocks=9 default (n_downsampling is forced to 5 inside)
    g.spade_hidden = 128  # test/spade.py: nhidden = 128 (hard-coded)

    # ---------------------------------------------------------------- data (two inconsistent pipelines, train/ vs test/)
    d = config.data = ml_collections.ConfigDict()
    d.image_size = 512  # test/dataset_loader_lama.py: random 512 crop; test/dataset_loader1.py: masks Resize(512)
    d.canny_sigma = 2.0  # test/dataset_loader_lama.py: image_to_edge(image, sigma=2)
    # original: test_image_range = "[0, 1]" (test/dataset_loader_lama.py: ToTensor only)
    # original: test_wraparound = False (ToPILImage of a [0, 1] tensor: the raw bytes (structure_inputs.npz lama_*))
    # original: train_crop = 256 (train/dataset_loader_lama.py: random 256 crop + horizontal flip p 0.5)
    # original: train_image_range = "[-1, 1]" (train/dataset_loader_lama.py: Normalize((0.5,)*3, (0.5,)*3))
    d.train_wraparound = True  # image_to_edge on the normalised tensor: the MEDFE-style garble (canny.py)
    d.mask_polarity = "files 255 = hole; M = 1 - ToTensor(convert('1')) = 1 on known pixels; G gets 1 - M"

    # ---------------------------------------------------------------- losses (train/train.py, losses.py, pcp.py)
    lo = config.loss = ml_collections.ConfigDict()
    lo.image_l1 = 10.0  # train.py: 10 * l1loss(output * mask, image * mask) (known pixels only)
    lo.structure_l1 = 10.0  # train.py: 10 * l1loss(image_high * mask, high * mask)
    # original: resnet_pl = 900.0 (train.py: loss_resnet_pl(com_output, image) * 30 with ResNetPL(weight=30) inside)
    lo.resnet_pl_available = False  # ADE20k ResNet50-dilated weights: not obtainable offline (perceptual=None)
    lo.feature_matching = 100.0  # train.py: feature_matching_loss(gen_feats, real_feats) * 100
    lo.adversarial = 10.0  # losses.py generator_loss: softplus(-D(output)).mean() * 10
    lo.r1 = 0.001  # train.py: discriminator_real_loss(gp_coef=0.001, do_GP=True)

    # ---------------------------------------------------------------- discriminator (model.py:Discriminator)
    dd = config.discriminator = ml_collections.ConfigDict()
    dd.ndf = 64  # model.py: Discriminator(input_nc=3, ndf=64, n_layers=4)
    dd.n_layers = 4

    # ---------------------------------------------------------------- optimisation (train/train.py, run_train.py)
    o = config.optimizer = ml_collections.ConfigDict()
    o.g_lr = 1e-3  # train.py: Adam(netG, lr=1e-3, betas=(0, 0.99))
    o.d_lr = 1e-4  # train.py: Adam(netD, lr=1e-4, betas=(0, 0.99))
    o.b1, o.b2 = 0.0, 0.99

    # ---------------------------------------------------------------- checkpoint
    # original: state_dict_prefix = "module." (train.py: torch.save(DataParallel(netG).state_dict(), 'G_<epoch>.pth'))
    # original: training_only_prefixes = ("up_high.",) (model.py: up_high, the structure decoder of the training loss)

    # ---------------------------------------------------------------- training through fdm_jax's loop (train.py)
    # fdm_jax.train.loop.train_phase with fdm_jax.tsgl.phase (make_phase dispatches on model_name):
    #   python train.py --config configs/tsgl_lama.py:tiny --config.run.max_steps=3 --workdir runs/tsgl_tiny
    config.seed = 0  # this port: seeds the data order, crops, masks and initialisation
    config.phase = "generator"  # the one phase of TSGL (G and D each iteration); keys of config.train / config.masks
    config.image_size = 256  # train/dataset_loader_lama.py: random 256 crop (main.py --image_size 512 is unused there)
    cm.training_data(d, config.image_size)
    d.num_workers = 8  # train.py: DataLoader(num_workers=8)
    d.texture_blur_radius = 2.0  # unused (the 512 model has no RTV input)

    m = config.masks = ml_collections.ConfigDict()
    m.generator = cm.training_masks()

    t = config.train = ml_collections.ConfigDict()
    tg = t.generator = ml_collections.ConfigDict()
    tg.batch_size = 32  # main.py: --batch_size default 32 (DataParallel: the GLOBAL batch; run.global_batch_size)
    tg.num_epochs = 2  # main.py: --max_epoch default 1, train.py: range(0, max_epoch + 1) = 2 epochs
    tg.init_from = ""  # '' (fresh, the original's init) or a project run directory; not an original .pth

    config.run = cm.run_settings(tg)

    # ---------------------------------------------------------------- paper numbers (Table VI)
    ref = config.reference = ml_collections.ConfigDict()
    ref.source = "Liu et al. (TSGL) Table VI / III, Places2 512x512, LaMa narrow/medium/wide masks"
    ref.params_M = 34.0  # Table VI, Ours (LaMa): 34.0M
    ref.gflops = 463.0  # Table VI, Ours (LaMa): 463.0G ("FLOPs" = MACs, as counted on the original)
    ref.fid_narrow, ref.fid_medium, ref.fid_wide = 0.58, 1.26, 1.65  # Table VI, Ours (LaMa)
    ref.lpips_narrow, ref.lpips_medium, ref.lpips_wide = 0.081, 0.106, 0.119  # Table VI, Ours (LaMa)
    ref.note = ("463.37 GMAC and 34,468,035 test-time parameters counted on the original "
                "(the 4,141,313 of the training-only up_high excluded)")

    if variant == "tiny":
        g.ngf = 3  # shared/fixtures/tsgl/tsgl_lama_generator_small.npz meta.kwargs.ngf
        g.max_features = 12  # tsgl_lama_generator_small.npz meta.kwargs.max_features
        g.n_blocks = 2  # tsgl_lama_generator_small.npz meta.kwargs.n_blocks
        d.image_size = 128  # tsgl_lama_generator_small.npz inputs: 128x128 crop
        dd.ndf = 8  # this port: a small discriminator for the CPU loss tests
        cm.tiny_training(config)
    return config
