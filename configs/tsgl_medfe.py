r"""TSGL, the 256x256 model of Liu et al., "Thinking inside the Convolution for Image Inpainting:
Reconstructing Texture via Structure under Global and Local Side" (code htyjers/ConvInpaint-TSGL@e9f6438,
TSGL_MEDFE/): the network behind the paper's main tables.

What it reproduces. Table II (PSNR / SSIM / FID per mask bucket 10-20 ... 40-50 %, NVIDIA irregular
masks) on CelebA and Places2 at 256x256 (`config.reference`, Ours (TSGL) rows). The released PSV / CelebA
/ Places2 checkpoints (Baidu pan) are not reachable here; the port is checked against the original code
at the ':tiny' widths (shared/fixtures/tsgl). Table V's complexity for this model (95.1G FLOPs / 37.8M
parameters) cannot be reproduced from the released code with any counting convention (on the
original modules the test-time generator is 197.7 GMAC and 138.3M parameters, 27.2M
of them the frozen random `mask_conv` weights of the balance module); `tsgl_summary` gives ours.

Commands with this port:
    python -m fdm_jax.parity ../shared/fixtures/tsgl/tsgl_medfe_generator_small.npz       # ':tiny' vs the original
    python -c "from fdm_jax.cli.config_loading import load_config; from fdm_jax.convert.tsgl import tsgl_summary; \
               print(tsgl_summary(load_config('configs/tsgl_medfe.py')))"                  # params, GMACs
  Weights: fdm_jax.convert.tsgl.load_medfe_generator('G_0.pth', build_generator(config.model)).
  Inputs: image and RTV texture normalised to [-1, 1]; edge and gray from the WRAPPED uint8 image
  (fdm_jax.tsgl.structure.edge_and_gray(..., wraparound=True)), as the checkpoints were trained; mask
  M = 1 on known pixels (fdm_jax.tsgl.structure.known_mask).

Variants (`get_config(arg)`, or `configs/tsgl_medfe.py:tiny`):
    ''     the released model (cnum 64, tdim 180, depths 2/2/6/6, 4 heads, window 8) at 256x256.
    'tiny' cnum 4, tdim 12, depths 1/2/2/2: shared/fixtures/tsgl/tsgl_medfe_generator_small.npz.

Every constant names its source: files are of htyjers/ConvInpaint-TSGL@e9f6438 (TSGL_MEDFE/...).
"""

import ml_collections

from fdm_jax.cli.config_loading import load_sibling

VARIANTS = {
    "": "TSGL (MEDFE-based, 256x256) as released (also selected by arg=None)",
    "tiny": "cnum 4, tdim 12, depths 1/2/2/2: the tsgl_medfe_generator_small fixture, for CPU tests",
}


def get_config(arg=None):
    variant = "" if arg is None else str(arg).strip()
    if variant not in VARIANTS:
        valid = ", ".join(f"{k!r} ({v})" for k, v in VARIANTS.items())
        raise ValueError(f"configs/tsgl_medfe.py: unknown variant {arg!r}; valid variants: {valid}")

    cm = load_sibling(__file__, "tsgl_common.py")
    config = ml_collections.ConfigDict()
    config.model_name = "tsgl_medfe"

    # ---------------------------------------------------------------- generator (test/model.py:Generator)
    g = config.model = ml_collections.ConfigDict()
    g.name = "tsgl_medfe"  # fdm_jax.convert.tsgl.build_generator -> fdm_jax.tsgl.medfe.TSGLMedfeGenerator
    g.cnum = 64  # test/model.py Generator.__init__: cnum = 64
    g.tdim = 180  # test/model.py: tdim = 180
    g.num_heads = 4  # test/model.py: num_heads = 4
    g.depths = (2, 2, 6, 6)  # test/model.py: depths = [2, 2, 6, 6] (the paper says {2, 2, 6, 2})
    g.window_sizes = (8, 8, 8, 8)  # test/model.py: window_sizes = [8, 8, 8, 8]
    g.mlp_ratio = 2.0  # test/trans.py: BasicLayer(mlp_ratio=2.) default
    g.spade_hidden = 128  # test/spade.py: nhidden = 128 (hard-coded)

    # ---------------------------------------------------------------- data (test/dataset_loader*.py, canny.py)
    d = config.data = ml_collections.ConfigDict()
    d.image_size = 256  # dataset_loader.py: random 256 crop, Resize((256, 256), NEAREST); the model is fixed at 256
    d.image_range = "[-1, 1]"  # dataset_loader.py: ToTensor + Normalize((0.5,)*3, (0.5,)*3) (image and RTV)
    d.canny_sigma = 2.0  # dataset_loader.py: image_to_edge(image, sigma=2.)
    # original: wraparound = True (image_to_edge on the [-1, 1] tensor: ToPILImage wraps (canny.py:image_to_edge))
    d.texture = "RTV: StructureFlow tsmooth(img, 0.015, 3, 0.001, 3) of the full image (README; not in the repo)"
    d.mask_polarity = "files 255 = hole; M = 1 - ToTensor(Resize(256, NEAREST)(convert('1'))) = 1 on known pixels"
    # original: train_flip = True (train/dataset_loader.py: shared random horizontal flip)

    # ---------------------------------------------------------------- losses (train/train.py)
    lo = config.loss = ml_collections.ConfigDict()
    lo.gan = "hinge"  # train.py: gan_type = 'hinge' (the paper's Eq. 16 says NS-GAN)
    lo.hole_l1 = 5.0  # train.py: 5 * l1loss(output * (1 - mask), image * (1 - mask))
    lo.valid_l1 = 1.0  # train.py: + l1loss(output * mask, image * mask)
    # original: structure_hole_l1 = 5.0 (train.py: 5 * l1loss(image_high * (1 - mask), high * (1 - mask)))
    # original: structure_valid_l1 = 1.0 (train.py: + l1loss(image_high * mask, high * mask))
    lo.adversarial = 0.1  # train.py: gen_fake_loss * 0.1

    # ---------------------------------------------------------------- discriminator (model.py:Discriminator)
    dd = config.discriminator = ml_collections.ConfigDict()
    dd.widths = (64, 128, 256, 512)  # model.py Discriminator: cnum = 64, x1 x2 x4 x8 (4,318,401 params)

    # ---------------------------------------------------------------- optimisation (train/train.py)
    o = config.optimizer = ml_collections.ConfigDict()
    o.g_lr = 5e-4  # train.py: Adam(netG, lr=5e-4, betas=(0.5, 0.99))
    o.d_lr = 1e-4  # train.py: Adam(netD, lr=1e-4, betas=(0.5, 0.99))
    o.b1, o.b2 = 0.5, 0.99
    o.step_lr_epochs = 3  # train.py: StepLR(step_size=3, gamma=0.1) on both (not in the paper)
    o.step_lr_gamma = 0.1

    # ---------------------------------------------------------------- checkpoint
    # original: state_dict_prefix = "module." (train.py: torch.save(DataParallel(netG).state_dict(), 'G_<epoch % 15>.pth'))
    # original: training_only_prefixes = ("en_high_6.", "en_high_7.", "de_high_") (model.py: the structure decoder D_S)

    # ---------------------------------------------------------------- training through fdm_jax's loop (train.py)
    # fdm_jax.train.loop.train_phase with fdm_jax.tsgl.phase (make_phase dispatches on model_name):
    #   python train.py --config configs/tsgl_medfe.py:tiny --config.run.max_steps=3 --workdir runs/tsgl_tiny
    config.seed = 0  # this port: seeds the data order, crops, masks and initialisation
    config.phase = "generator"  # the one phase of TSGL (G and D each iteration); keys of config.train / config.masks
    config.image_size = 256  # dataset_loader.py: random 256 crop (+ Resize(256, NEAREST)); main.py --image_size 256
    cm.training_data(d, config.image_size)
    # data_root/train_name: the original's --dataset_dir is the RTV folder, RGB paths derived from it
    d.num_workers = 4  # train.py: DataLoader(num_workers=4)
    # the texture input (fdm_jax.tsgl.phase): 'rtv' = the original's (README: StructureFlow's
    # generate_structure_images.m on the full image, then the loader crops it with the RGB image);
    # 'gaussian' = this port's fallback stand-in, PIL GaussianBlur(texture_blur_radius) of the crop
    d.texture_source = "rtv"
    d.texture_blur_radius = 2.0  # this port: the 'gaussian' stand-in (also the fixtures' raw_low)
    rt = d.rtv = ml_collections.ConfigDict()  # fdm_jax.tsgl.rtv.rtv_uint8
    # RenYurui/StructureFlow:scripts/matlab/generate_structure_images.m: tsmooth(image, 0.015, 3, 0.001, 3)
    rt.lam, rt.sigma, rt.sharpness, rt.max_iter = 0.015, 3.0, 0.001, 3
    rt.solver = "pcg"  # tsmooth.m: ichol + pcg(A, b, 0.1, 100) where ichol is a builtin (MATLAB); 'exact' = A\b
    rt.cache_dir = "./data/rtv_cache"  # this port: RTV images by content hash + parameters ('' = recompute)

    m = config.masks = ml_collections.ConfigDict()
    m.generator = cm.training_masks()

    t = config.train = ml_collections.ConfigDict()
    tg = t.generator = ml_collections.ConfigDict()
    tg.batch_size = 16  # main.py: --batch_size default 16 (DataParallel: the GLOBAL batch; run.global_batch_size)
    tg.num_epochs = 120  # main.py: --max_epoch default 120, train.py: range(1, max_epoch + 1) (the paper: 150 PSV/CelebA, 20 Places2)
    tg.init_from = ""  # '' (fresh, the original's init) or a project run directory; not an original .pth

    config.run = cm.run_settings(tg)

    # ---------------------------------------------------------------- paper numbers (Tables II and V)
    ref = config.reference = ml_collections.ConfigDict()
    ref.source = "Liu et al. (TSGL) Table II (256x256, NVIDIA masks 10-20/20-30/30-40/40-50 %) and Table V"
    # celeba_psnr = (33.45, 30.92, 29.76, 26.13)  # Table II, CelebA, Ours (TSGL)
    # celeba_ssim = (0.993, 0.984, 0.979, 0.963)
    # celeba_fid = (1.17, 1.98, 3.24, 4.35)
    # places2_psnr = (30.10, 27.30, 25.49, 22.74)  # Table II, Places2, Ours (TSGL)
    # places2_ssim = (0.982, 0.955, 0.923, 0.887)
    # places2_fid = (8.40, 16.98, 22.88, 34.80)
    ref.params_M = 37.8  # Table V, Ours: 37.8M params
    ref.gflops = 95.1  # Table V, Ours: 95.1G FLOPs
    ref.note = ("not reproducible from the released code: its test-time generator has 138,331,611 "
                "parameters and 197.74 GMAC at 256x256 (111.1M / 142.0 GMAC without the frozen mask_conv); "
                "the nearest match, 38.04M, is the encoder alone at 74.0 GMAC")

    if variant == "tiny":
        g.cnum = 4  # shared/fixtures/tsgl/tsgl_medfe_generator_small.npz meta.kwargs.cnum
        g.tdim = 12  # tsgl_medfe_generator_small.npz meta.kwargs.tdim
        g.depths = (1, 2, 2, 2)  # tsgl_medfe_generator_small.npz meta.kwargs.depths
        dd.widths = (8, 16, 32, 64)  # this port: a small discriminator for the CPU loss tests
        cm.tiny_training(config)
        d.texture_source = "gaussian"  # this port: CPU smoke runs skip tsmooth (seconds per full image)
    return config
