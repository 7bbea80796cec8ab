r"""PUT + FDM on Paris StreetView: the paper setting of the FDM paper.

Park & Jung, "Improving Detail in Pluralistic Image Inpainting with Feature Dequantization",
WACV 2025 (arXiv 2412.01046): PUT (P-VQVAE codec + 35-layer feature sampler) with the Feature
Dequantization Module, at 256x256, on Paris StreetView. This file reproduces the official configs
hyudsl/FDM@3d3c30fd configs/paris/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml and
configs/paris/{inpainting,inpainting_with_token}/{model,dataloader,task_config}.yaml. The
architecture and shared constants live in configs/put_fdm_common.py (identical for Places).

Usage:
  python train.py --config configs/paris.py --config.phase=fdm_tuning --workdir runs/paris
  python -m fdm_jax.summary --config configs/paris.py
  Append ":tiny" to the path (configs/paris.py:tiny) for the small CPU-test variant.

Training phases (`config.phase`; FDM paper, Sec. 3.3; configs/paris/*.yaml):
  codec      (1a) P-VQVAE, encoder_decoder.yaml      -> output/experiments/paris/encoder_decoder
  sampler    (1b) transformer, transformer.yaml       (codec frozen)
  fdm        (2)  FDM alone with L_qe, fdm.yaml       (codec frozen)
  fdm_tuning (3)  FDM + decoder, fdm_tuning.yaml      (the released `paris/fdm_tuning.pth`)

Data (configs/paris/*.yaml and image_synthesis/data/):
  * Training images data/images/paris/train, validation data/images/paris/val; phase 1
    validates on the *training* folder (encoder_decoder.yaml: validation_datasets).
  * Masks: the NVIDIA/PConv irregular testing masks (12,000 PNGs, 255 = hole) in data/masks.
  * Evaluation uses hyudsl/FDM:data/image_list/paris/image_list.txt: 1,900 images named
    0.png ... 1899.png, paired in order with mask_list05_06.txt (50-60 % holes) by default. This
    is not the common 100-image Paris test split, and the paper text speaks of a reorganised
    14,000 / 1,000 train/test split (FDM paper, Sec. 4.1).
"""

from fdm_jax.cli.config_loading import load_sibling


def get_config(arg=None):
    """Paris config. `arg`: None or '' (the paper setting) or 'tiny'."""
    cm = load_sibling(__file__, "put_fdm_common.py")
    variant = cm.parse_variant(arg, "configs/paris.py")
    config = paper_config()
    cm.apply_variant(config, variant)
    return cm.validate(config)


def paper_config():
    """The paper setting before any variant (configs/places.py states its differences to it)."""
    cm = load_sibling(__file__, "put_fdm_common.py")
    ConfigDict = cm.ConfigDict

    config = ConfigDict()
    config.seed = 0
    config.phase = "fdm_tuning"  # placeholder default; train.py selects the phase (one of cm.PHASES)
    config.image_size = 256  # configs/paris/*.yaml: im_preprocessor_config.params.size [256, 256]

    # ------------------------------------------------------------------ model
    config.model = cm.model_config()
    config.sampling = cm.sampling_config()

    # ------------------------------------------------------------------ data
    d = config.data = ConfigDict()
    d.name = "paris"
    d.source = "folder"  # images from data_root/train_name (fdm_jax.data.sources.FolderImageSource); or 'tfds' / 'demo'
    d.tfds_name = ""  # with source 'tfds': a built dataset, e.g. 'image_folder/paris' (fdm_jax/data/tfds_image_folder.py)
    d.tfds_data_dir = ""
    d.train_list_file = ""  # with source 'folder': a file listing the training images (paths relative to the folder); '' = every image
    d.val_list_file = ""  # the same for validation  # with source 'tfds': tfds data_dir ('' = tfds default)
    d.data_root = "./data"  # configs/paris/*.yaml: dataloader.data_root
    d.train_name = "images/paris/train"  # configs/paris/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml: train_datasets[0].params.name
    d.val_name = "images/paris/val"  # configs/paris/{transformer,fdm,fdm_tuning}.yaml: validation_datasets[0].params.name
    d.image_end_with = ConfigDict()
    d.image_end_with.codec = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # configs/paris/encoder_decoder.yaml: image_end_with
    d.image_end_with.sampler = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # configs/paris/transformer.yaml: image_end_with
    d.image_end_with.fdm = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # configs/paris/fdm.yaml: image_end_with
    d.image_end_with.fdm_tuning = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # configs/paris/fdm_tuning.yaml: image_end_with
    d.image_end_with.eval = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG"  # configs/paris/inpainting/dataloader.yaml: image_end_with (no JPG)
    d.num_workers = 6  # configs/paris/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml: dataloader.num_workers
    d.train_preprocess = ConfigDict()
    d.train_preprocess.size = 256  # configs/paris/*.yaml: train im_preprocessor_config.params.size [256, 256]
    d.train_preprocess.smallest_max_size = 256  # configs/paris/*.yaml: train im_preprocessor_config.params.smallest_max_size
    d.train_preprocess.random_crop = True  # configs/paris/*.yaml: train im_preprocessor_config.params.random_crop
    d.train_preprocess.horizon_flip = True  # configs/paris/*.yaml: train im_preprocessor_config.params.horizon_flip
    d.eval_preprocess = ConfigDict()
    d.eval_preprocess.size = 256  # configs/paris/*.yaml + inpainting/dataloader.yaml: validation im_preprocessor_config.params.size
    d.eval_preprocess.smallest_max_size = 256  # configs/paris/*.yaml + inpainting/dataloader.yaml: validation smallest_max_size
    d.eval_preprocess.random_crop = False  # data/utils/image_preprocessor.py: SimplePreprocessor(random_crop=False) default -> center crop
    d.eval_preprocess.horizon_flip = False  # data/utils/image_preprocessor.py: SimplePreprocessor(horizon_flip=False) default
    cm.value_scaling(d)
    d.eval = ConfigDict()
    d.eval.name = "images/paris/val"  # configs/paris/inpainting/dataloader.yaml: validation_datasets[0].params.name
    d.eval.image_list_file = "./data/image_list/paris/image_list.txt"  # configs/paris/inpainting/dataloader.yaml: image_list_file
    d.eval.num_images = 1900  # hyudsl/FDM:data/image_list/paris/image_list.txt holds 0.png ... 1899.png
    d.eval.batch_size = 1  # configs/paris/inpainting/dataloader.yaml: dataloader.batch_size
    d.eval.num_workers = 0  # configs/paris/inpainting/dataloader.yaml: dataloader.num_workers

    # ------------------------------------------------------------------ masks
    m = config.masks = ConfigDict()
    # Phase 1a, data/image_list_dataset.py (configs/paris/encoder_decoder.yaml: train_datasets[0].params;
    # its validation set has the same mask settings).
    m.codec = ConfigDict()
    m.codec.dataset = "image_list_dataset"  # configs/paris/encoder_decoder.yaml: train_datasets[0].target
    m.codec.provided_mask_only = False  # image_list_dataset: provided mask with probability provided_mask_prob, else stroke mask
    m.codec.provided_mask_name = "masks"  # configs/paris/encoder_decoder.yaml: provided_mask_name
    m.codec.provided_mask_prob = 0.7  # configs/paris/encoder_decoder.yaml: use_provided_mask
    m.codec.provided_mask_file_range = cm.provided_mask_file_range(("0.2", "0.6"))  # use_provided_mask_ratio ("0.2", "0.6")  # (4000, 12000): data/image_list_dataset.py MASK_RATIO_INDEX
    m.codec.mask_prob = 1.0  # configs/paris/encoder_decoder.yaml: mask
    m.codec.zero_mask = 0.3  # configs/paris/encoder_decoder.yaml: zero_mask
    m.codec.mask_low_to_high = 0.0  # configs/paris/encoder_decoder.yaml: mask_low_to_high
    m.codec.mask_low_size = (32, 32)  # configs/paris/encoder_decoder.yaml: mask_low_size
    m.codec.erase_image_with_mask = 0.2  # configs/paris/encoder_decoder.yaml: erase_image_with_mask
    m.codec.stroken_mask_params = cm.stroke_mask_params()  # configs/paris/encoder_decoder.yaml: stroken_mask_params
    # Phase 1b, data/image_list_dataset.py (configs/paris/transformer.yaml: train_datasets[0].params).
    m.sampler = ConfigDict()
    m.sampler.dataset = "image_list_dataset"  # configs/paris/transformer.yaml: train_datasets[0].target
    m.sampler.provided_mask_only = False
    m.sampler.provided_mask_name = "masks"  # configs/paris/transformer.yaml: provided_mask_name
    m.sampler.provided_mask_prob = 0.8  # configs/paris/transformer.yaml: use_provided_mask
    m.sampler.provided_mask_file_range = cm.provided_mask_file_range(("0.2", "0.6"))  # use_provided_mask_ratio ("0.2", "0.6")  # (4000, 12000)
    m.sampler.mask_prob = 1.0  # configs/paris/transformer.yaml: mask
    m.sampler.zero_mask = 0.0  # configs/paris/transformer.yaml: zero_mask
    m.sampler.mask_low_to_high = 0.05  # configs/paris/transformer.yaml: train mask_low_to_high
    m.sampler.mask_low_size = (32, 32)  # configs/paris/transformer.yaml: mask_low_size
    m.sampler.erase_image_with_mask = -1.0  # data/image_list_dataset.py: erase_image_with_mask=-1.0 default (not in the YAML: never)
    m.sampler.stroken_mask_params = cm.stroke_mask_params()  # configs/paris/transformer.yaml: stroken_mask_params
    # Phases 2 and 3, data/image_list_dataset_provided_mask.py. That class ALWAYS uses a provided
    # mask; it ignores provided_mask_prob (except as a > 0 switch), zero_mask, mask_low_to_high,
    # the stroke parameters and erasing (see its get_mask). The YAML values are kept as written.
    for stage in ("fdm", "fdm_tuning"):
        s = m[stage] = ConfigDict()
        s.dataset = "image_list_dataset_provided_mask"  # configs/paris/{fdm,fdm_tuning}.yaml: train_datasets[0].target
        s.provided_mask_only = True  # data/image_list_dataset_provided_mask.py: get_mask uses self.masks whenever they exist
        s.provided_mask_name = "masks"  # configs/paris/{fdm,fdm_tuning}.yaml: provided_mask_name
        s.provided_mask_prob = 0.8  # configs/paris/{fdm,fdm_tuning}.yaml: use_provided_mask (ignored, only > 0 matters)
        s.provided_mask_file_range = cm.provided_mask_file_range(("0.2", "0.6"))  # use_provided_mask_ratio ("0.2", "0.6")  # (4000, 12000): 20-60 % holes
        s.mask_prob = 1.0  # configs/paris/{fdm,fdm_tuning}.yaml: mask (ignored by this class)
        s.zero_mask = 0.0  # configs/paris/{fdm,fdm_tuning}.yaml: zero_mask (ignored)
        s.mask_low_to_high = 0.05  # configs/paris/{fdm,fdm_tuning}.yaml: mask_low_to_high (ignored)
        s.mask_low_size = (32, 32)  # configs/paris/{fdm,fdm_tuning}.yaml: mask_low_size (ignored)
        s.erase_image_with_mask = -1.0  # data/image_list_dataset_provided_mask.py: erase_image_with_mask=-1.0 default (no erasing)
        s.stroken_mask_params = cm.stroke_mask_params()  # configs/paris/{fdm,fdm_tuning}.yaml: stroken_mask_params (ignored)
    # Inference (configs/paris/inpainting/dataloader.yaml).
    m.eval = ConfigDict()
    m.eval.dataset = "image_list_dataset_provided_mask"  # configs/paris/inpainting/dataloader.yaml: validation_datasets[0].target
    m.eval.provided_mask_name = "masks"  # configs/paris/inpainting/dataloader.yaml: provided_mask_name
    m.eval.image_mask_paired = True  # configs/paris/inpainting/dataloader.yaml: image_mask_paired

    # ------------------------------------------------------------------ training
    t = config.train = ConfigDict()
    t.codec = cm.train_phase(
        batch_size=10,  # configs/paris/encoder_decoder.yaml: dataloader.batch_size
        warmup_steps=150,  # configs/paris/encoder_decoder.yaml: generator scheduler.params.warmup
        num_epochs=100,  # configs/paris/encoder_decoder.yaml: solver.max_epochs
        trainable=("encoder", "quant_conv", "codebook_ema", "post_quant_conv", "decoder"),  # modeling/model/inpainting_model.py: parameters('generator') + EMA in train mode
        init_from="",  # trained from scratch
        loss=cm.edge_connect_loss(
            "image",
            gan_loss="nsgan",  # configs/paris/encoder_decoder.yaml: loss_config.params.gan_loss
            g_gradient=5.0,  # configs/paris/encoder_decoder.yaml: loss_config.params.g_gradient_loss_weight
            disc_start=300,  # configs/paris/encoder_decoder.yaml: loss_config.params.disc_start
            style_start=150,  # configs/paris/encoder_decoder.yaml: loss_config.params.style_start
            gradient_start=150,  # configs/paris/encoder_decoder.yaml: loss_config.params.gradient_start
            content_start=150,  # configs/paris/encoder_decoder.yaml: loss_config.params.content_start
            quantize=1.0,  # modeling/model/inpainting_model.py: quantize_loss passed as other_loss, added unweighted in losses.py
        ),
        disc=cm.discriminator(
            start_iteration=300,  # configs/paris/encoder_decoder.yaml: discriminator.start_iteration
            warmup_steps=300,  # configs/paris/encoder_decoder.yaml: discriminator scheduler.params.warmup
        ),
    )
    sampler_opt = cm.ConfigDict()
    sampler_opt.optimizer = "adamw"  # configs/paris/transformer.yaml: optimizer.target torch.optim.AdamW
    sampler_opt.betas = (0.9, 0.95)  # configs/paris/transformer.yaml: optimizer.params.betas
    sampler_opt.eps = 1e-8  # torch.optim.AdamW default eps (not set in the YAML)
    sampler_opt.weight_decay = 0.01  # configs/paris/transformer.yaml: generator_config.params.weight_decay
    sampler_opt.decay_param_names = ("kernel",)  # modeling/vector_predictor/transformer.py: parameters(name): decay only Linear/Conv weights; biases, LayerNorm and pos_emb get 0
    sampler_opt.min_lr = 1e-5  # configs/paris/transformer.yaml: scheduler.params.min_lr
    sampler_opt.warmup_lr = 3e-4  # configs/paris/transformer.yaml: scheduler.params.warmup_lr
    t.sampler = cm.train_phase(
        optimizer=sampler_opt,
        batch_size=2,  # configs/paris/transformer.yaml: dataloader.batch_size
        warmup_steps=2000,  # configs/paris/transformer.yaml: scheduler.params.warmup
        num_epochs=300,  # configs/paris/transformer.yaml: solver.max_epochs
        random_quantize=0.3,  # configs/paris/transformer.yaml: generator_config.params.random_quantize
        trainable=("sampler",),  # modeling/model/inpainting_model.py: parameters('transformer')
        init_from="./output/experiments/paris/encoder_decoder/checkpoint/last.pth",  # configs/paris/transformer.yaml: codec_path
        loss=cm.token_ce_loss(),
        disc=cm.no_discriminator(),
    )
    t.fdm = cm.train_phase(
        batch_size=10,  # configs/paris/fdm.yaml: dataloader.batch_size
        warmup_steps=300,  # configs/paris/fdm.yaml: fdm scheduler.params.warmup
        num_epochs=100,  # configs/paris/fdm.yaml: solver.max_epochs
        trainable=("fdm",),  # modeling/model/inpainting_model.py: parameters('fdm')
        init_from="./output/experiments/paris/encoder_decoder/checkpoint/last.pth",  # configs/paris/fdm.yaml: codec_path
        loss=cm.edge_connect_loss(
            "qe",
            g_gradient=0.0,  # configs/paris/fdm.yaml: loss_config.params.g_gradient_loss_weight
            g_style=0.0,  # configs/paris/fdm.yaml: loss_config.params.g_style_loss_weight
            g_content=0.0,  # configs/paris/fdm.yaml: loss_config.params.g_content_loss_weight
            g_adv=0.0,  # configs/paris/fdm.yaml: loss_config.params.g_adv_loss_weight
            qe=1.0,  # modeling/modules/edge_connect/losses.py 'fdm' branch: l1_loss(pv, target) * g_rec_loss_weight (1)
        ),
        disc=cm.no_discriminator(),
    )
    t.fdm_tuning = cm.train_phase(
        batch_size=10,  # configs/paris/fdm_tuning.yaml: dataloader.batch_size
        warmup_steps=150,  # configs/paris/fdm_tuning.yaml: fdm_decoder_tuning scheduler.params.warmup
        num_epochs=100,  # configs/paris/fdm_tuning.yaml: solver.max_epochs
        trainable=("post_quant_conv", "decoder", "fdm"),  # modeling/model/inpainting_model.py: parameters('fdm_decoder_tuning')
        init_from="./output/experiments/paris/fdm/checkpoint/last.pth",  # configs/paris/fdm_tuning.yaml: codec_path
        loss=cm.edge_connect_loss(
            "image+qe",
            gan_loss="nsgan",  # configs/paris/fdm_tuning.yaml: loss_config.params.gan_loss
            g_gradient=5.0,  # configs/paris/fdm_tuning.yaml: loss_config.params.g_gradient_loss_weight
            disc_start=300,  # configs/paris/fdm_tuning.yaml: loss_config.params.disc_start
            style_start=150,  # configs/paris/fdm_tuning.yaml: loss_config.params.style_start
            gradient_start=150,  # configs/paris/fdm_tuning.yaml: loss_config.params.gradient_start
            content_start=150,  # configs/paris/fdm_tuning.yaml: loss_config.params.content_start
            qe=1.0,  # modeling/modules/edge_connect/losses.py 'fdm_decoder_tuning' branch: lip_loss * g_rec_loss_weight (1)
        ),
        disc=cm.discriminator(
            start_iteration=300,  # configs/paris/fdm_tuning.yaml: discriminator.start_iteration
            warmup_steps=300,  # configs/paris/fdm_tuning.yaml: discriminator scheduler.params.warmup
        ),
    )

    config.run = cm.run_settings()
    config.perceptual = cm.perceptual_settings()
    # ------------------------------------------------------------------ paper numbers
    config.reference = cm.reference()
    config.reference.table1_source = "FDM paper, Table 1, Paris Street View (small = 20-40 %, large = 40-60 % holes)"
    config.reference.fid_small = 11.63  # Table 1, Ours (PUT + FDM), Paris, FID small
    config.reference.fid_large = 18.66  # Table 1, Ours (PUT + FDM), Paris, FID large
    config.reference.lpips_small = 0.131  # Table 1, Ours (PUT + FDM), Paris, LPIPS small
    config.reference.lpips_large = 0.234  # Table 1, Ours (PUT + FDM), Paris, LPIPS large
    config.reference.put_fid_small = 12.58  # Table 1, PUT, Paris, FID small
    config.reference.put_fid_large = 20.52  # Table 1, PUT, Paris, FID large
    return config
