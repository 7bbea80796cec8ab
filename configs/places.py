r"""PUT + FDM on Places ("naturalscene" subset): the paper setting of the FDM paper.

Park & Jung, "Improving Detail in Pluralistic Image Inpainting with Feature Dequantization",
WACV 2025 (arXiv 2412.01046): PUT (P-VQVAE codec + 35-layer feature sampler) with the Feature
Dequantization Module, at 256x256, on the 8-category Places subset that PUT calls
"naturalscene". This file reproduces the official configs hyudsl/FDM@3d3c30fd
configs/naturalscene/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml and
configs/naturalscene/inpainting/{model,dataloader,task_config}.yaml. The architecture is the same
as for Paris and lives in configs/put_fdm_common.py.

Usage:
  python train.py --config configs/places.py --config.phase=fdm_tuning --workdir runs/places
  python -m fdm_jax.summary --config configs/places.py
  Append ":tiny" to the path (configs/places.py:tiny) for the small CPU-test variant.

Training phases (`config.phase`; FDM paper, Sec. 3.3; configs/naturalscene/*.yaml):
  codec      (1a) P-VQVAE, encoder_decoder.yaml. The phase-2 config loads
                  ./checkpoint/naturalscene/encoder_decoder.pth, very likely PUT's released
                  P-VQVAE converted by key renaming (fdm_jax.convert.put_fdm.PUT_CODEC_RENAMES).
  sampler    (1b) transformer.yaml exists, but FDM did NOT train its own transformer for
                  naturalscene: inpainting/model.yaml loads PUT's released one
                  (generator_config.params.ckpt_path: ./checkpoint/naturalscene/generator.pth,
                  "load generator from put"; transformer.py:init_from_ckpt, strict=False). `train.sampler`
                  keeps the transformer.yaml values for completeness.
  fdm        (2)  FDM alone with L_qe, fdm.yaml.
  fdm_tuning (3)  FDM + decoder, fdm_tuning.yaml. Note the D optimiser starts at 5000 but the
                  adversarial loss at 10000 (fdm_tuning.yaml: start_iteration vs disc_start).

Data (configs/naturalscene/*.yaml and image_synthesis/data/):
  * data/naturalscene/{train,val} must already hold the 8-category subset of
    Places365-Challenge: mountain, mountain_path, mountain_snowy, butte, canyon,
    field/cultivated, tundra, valley (`data.subset_categories`). PUT's dataset filters these
    folders only when the dataset name is exactly 'naturalscene'; the FDM configs use
    'naturalscene/train', so the filter does not fire. The paper: 237,777 training images.
  * Masks: the NVIDIA/PConv irregular testing masks (12,000 PNGs, 255 = hole) in
    data/irregular-mask. FDM phases 2-3 use all of them (1-60 % holes).
  * Evaluation: hyudsl/FDM:data/image_list/naturalscene/image_list.txt, 800 Places365 val
    images (the same list as liuqk3/PUT:data/naturalscenevalidation.txt), paired in order with
    mask_list05_06.txt (50-60 % holes) by default.
"""

import importlib.util
import os


def _common():
    """Loads configs/put_fdm_common.py from next to this file (configs/ is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "put_fdm_common.py")
    spec = importlib.util.spec_from_file_location("_fdm_jax_configs_put_fdm_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config(arg=None):
    """Places (naturalscene) config. `arg`: None or '' (the paper setting) or 'tiny'."""
    cm = _common()
    variant = cm.parse_variant(arg, "configs/places.py")
    ConfigDict = cm.ConfigDict

    config = ConfigDict()
    config.seed = 0
    config.phase = "fdm_tuning"  # placeholder default; train.py selects the phase (one of cm.PHASES)
    config.image_size = 256  # configs/naturalscene/*.yaml: im_preprocessor_config.params.size [256, 256]

    # ------------------------------------------------------------------ model
    config.model = cm.model_config()
    config.model_fixed = cm.model_fixed()
    config.sampling = cm.sampling_config()

    # ------------------------------------------------------------------ data
    d = config.data = ConfigDict()
    d.name = "naturalscene"
    d.source = "folder"  # images from data_root/train_name (fdm_jax.data.sources.FolderImageSource); or 'tfds' / 'demo'
    d.tfds_name = ""  # with source 'tfds': a built dataset, e.g. 'image_folder/paris' (fdm_jax/data/tfds_image_folder.py)
    d.tfds_data_dir = ""
    d.train_list_file = ""  # with source 'folder': a file listing the training images (paths relative to the folder); '' = every image
    d.val_list_file = ""  # the same for validation  # with source 'tfds': tfds data_dir ('' = tfds default)
    d.data_root = "./data"  # configs/naturalscene/*.yaml: dataloader.data_root
    d.train_name = "naturalscene/train"  # configs/naturalscene/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml: train_datasets[0].params.name
    d.val_name = "naturalscene/val"  # configs/naturalscene/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml: validation_datasets[0].params.name
    d.codec_val_name = "naturalscene/val"  # configs/naturalscene/encoder_decoder.yaml: validation_datasets[0].params.name
    d.subset_categories = (  # data/image_list_dataset.py: sub_root of the 'naturalscene' filter (the folders must already hold only these)
        "m/mountain", "m/mountain_path", "m/mountain_snowy", "b/butte", "c/canyon",
        "f/field/cultivated", "t/tundra", "v/valley")
    d.image_end_with = ConfigDict()
    d.image_end_with.codec = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # configs/naturalscene/encoder_decoder.yaml: image_end_with
    d.image_end_with.sampler = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # configs/naturalscene/transformer.yaml: image_end_with
    d.image_end_with.fdm = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG"  # configs/naturalscene/fdm.yaml: image_end_with (no JPG)
    d.image_end_with.fdm_tuning = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG"  # configs/naturalscene/fdm_tuning.yaml: image_end_with (no JPG)
    d.image_end_with.eval = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG"  # configs/naturalscene/inpainting/dataloader.yaml: image_end_with (no JPG)
    d.num_workers = 6  # configs/naturalscene/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml: dataloader.num_workers
    d.train_preprocess = ConfigDict()
    d.train_preprocess.size = 256  # configs/naturalscene/*.yaml: train im_preprocessor_config.params.size [256, 256]
    d.train_preprocess.smallest_max_size = 288  # configs/naturalscene/*.yaml: train im_preprocessor_config.params.smallest_max_size
    d.train_preprocess.random_crop = True  # configs/naturalscene/*.yaml: train im_preprocessor_config.params.random_crop
    d.train_preprocess.horizon_flip = True  # configs/naturalscene/*.yaml: train im_preprocessor_config.params.horizon_flip
    d.eval_preprocess = ConfigDict()
    d.eval_preprocess.size = 256  # configs/naturalscene/*.yaml + inpainting/dataloader.yaml: validation im_preprocessor_config.params.size
    d.eval_preprocess.smallest_max_size = 256  # configs/naturalscene/*.yaml + inpainting/dataloader.yaml: validation smallest_max_size
    d.eval_preprocess.random_crop = False  # data/utils/image_preprocessor.py: SimplePreprocessor(random_crop=False) default -> center crop
    d.eval_preprocess.horizon_flip = False  # data/utils/image_preprocessor.py: SimplePreprocessor(horizon_flip=False) default
    cm.value_scaling(d)
    d.eval = ConfigDict()
    d.eval.name = "naturalscene/val"  # configs/naturalscene/inpainting/dataloader.yaml: validation_datasets[0].params.name
    d.eval.image_list_file = "./data/image_list/naturalscene/image_list.txt"  # configs/naturalscene/inpainting/dataloader.yaml: image_list_file
    d.eval.num_images = 800  # hyudsl/FDM:data/image_list/naturalscene/image_list.txt, 800 Places365 val images
    d.eval.batch_size = 1  # configs/naturalscene/inpainting/dataloader.yaml: dataloader.batch_size
    d.eval.num_workers = 0  # configs/naturalscene/inpainting/dataloader.yaml: dataloader.num_workers
    d.eval.return_data_keys = ("image", "mask", "path")  # configs/naturalscene/inpainting/dataloader.yaml: return_data_keys

    # ------------------------------------------------------------------ masks
    m = config.masks = ConfigDict()
    # Phase 1a, data/image_list_dataset.py (configs/naturalscene/encoder_decoder.yaml:
    # train_datasets[0].params; its validation set has the same mask settings).
    m.codec = ConfigDict()
    m.codec.dataset = "image_list_dataset"  # configs/naturalscene/encoder_decoder.yaml: train_datasets[0].target
    m.codec.provided_mask_only = False  # image_list_dataset: provided mask with probability provided_mask_prob, else stroke mask
    m.codec.provided_mask_name = "irregular-mask"  # configs/naturalscene/encoder_decoder.yaml: provided_mask_name
    m.codec.provided_mask_prob = 0.7  # configs/naturalscene/encoder_decoder.yaml: use_provided_mask
    m.codec.provided_mask_ratio = ("0.2", "0.6")  # configs/naturalscene/encoder_decoder.yaml: use_provided_mask_ratio
    m.codec.provided_mask_file_range = cm.provided_mask_file_range(m.codec.provided_mask_ratio)  # (4000, 12000): data/image_list_dataset.py MASK_RATIO_INDEX
    m.codec.mask_prob = 1.0  # configs/naturalscene/encoder_decoder.yaml: mask
    m.codec.zero_mask = 0.3  # configs/naturalscene/encoder_decoder.yaml: zero_mask
    m.codec.mask_low_to_high = 0.0  # configs/naturalscene/encoder_decoder.yaml: mask_low_to_high
    m.codec.val_mask_low_to_high = 0.0  # configs/naturalscene/encoder_decoder.yaml: validation_datasets[0].params.mask_low_to_high
    m.codec.mask_low_size = (32, 32)  # configs/naturalscene/encoder_decoder.yaml: mask_low_size
    m.codec.multi_image_mask = False  # configs/naturalscene/encoder_decoder.yaml: multi_image_mask
    m.codec.erase_image_with_mask = 0.2  # configs/naturalscene/encoder_decoder.yaml: erase_image_with_mask
    m.codec.return_data_keys = ("image", "mask", "erase_mask")  # configs/naturalscene/encoder_decoder.yaml: return_data_keys
    m.codec.stroken_mask_params = cm.stroke_mask_params()  # configs/naturalscene/encoder_decoder.yaml: stroken_mask_params
    # Phase 1b, data/image_list_dataset.py (configs/naturalscene/transformer.yaml: train_datasets[0].params).
    m.sampler = ConfigDict()
    m.sampler.dataset = "image_list_dataset"  # configs/naturalscene/transformer.yaml: train_datasets[0].target
    m.sampler.provided_mask_only = False
    m.sampler.provided_mask_name = "irregular-mask"  # configs/naturalscene/transformer.yaml: provided_mask_name
    m.sampler.provided_mask_prob = 0.8  # configs/naturalscene/transformer.yaml: use_provided_mask
    m.sampler.provided_mask_ratio = ("0.2", "0.6")  # configs/naturalscene/transformer.yaml: use_provided_mask_ratio
    m.sampler.provided_mask_file_range = cm.provided_mask_file_range(m.sampler.provided_mask_ratio)  # (4000, 12000)
    m.sampler.mask_prob = 1.0  # configs/naturalscene/transformer.yaml: mask
    m.sampler.zero_mask = 0.0  # configs/naturalscene/transformer.yaml: zero_mask
    m.sampler.mask_low_to_high = 0.05  # configs/naturalscene/transformer.yaml: train mask_low_to_high
    m.sampler.val_mask_low_to_high = 0.0  # configs/naturalscene/transformer.yaml: validation_datasets[0].params.mask_low_to_high
    m.sampler.mask_low_size = (32, 32)  # configs/naturalscene/transformer.yaml: mask_low_size
    m.sampler.multi_image_mask = False  # configs/naturalscene/transformer.yaml: multi_image_mask
    m.sampler.erase_image_with_mask = -1.0  # data/image_list_dataset.py: erase_image_with_mask=-1.0 default (not in the YAML: never)
    m.sampler.return_data_keys = ("image", "mask")  # configs/naturalscene/transformer.yaml: return_data_keys
    m.sampler.stroken_mask_params = cm.stroke_mask_params()  # configs/naturalscene/transformer.yaml: stroken_mask_params
    # Phases 2 and 3, data/image_list_dataset_provided_mask.py, which ALWAYS uses a provided mask
    # (see its get_mask). The naturalscene YAMLs set only provided_mask_name, return_data_keys and
    # stroken_mask_params; the rest are the class defaults, so all 12,000 masks (1-60 % holes).
    for stage in ("fdm", "fdm_tuning"):
        s = m[stage] = ConfigDict()
        s.dataset = "image_list_dataset_provided_mask"  # configs/naturalscene/{fdm,fdm_tuning}.yaml: train_datasets[0].target
        s.provided_mask_only = True  # data/image_list_dataset_provided_mask.py: get_mask uses self.masks whenever they exist
        s.provided_mask_name = "irregular-mask"  # configs/naturalscene/{fdm,fdm_tuning}.yaml: provided_mask_name
        s.provided_mask_prob = 1.0  # data/image_list_dataset_provided_mask.py: use_provided_mask=1.0 default
        s.provided_mask_ratio = (0.0, 1.0)  # data/image_list_dataset_provided_mask.py: use_provided_mask_ratio=[0.0, 1.0] default (floats: int(20000*r))
        s.provided_mask_file_range = cm.provided_mask_file_range(s.provided_mask_ratio)  # (0, 12000): every mask
        s.mask_prob = -1.0  # data/image_list_dataset_provided_mask.py: mask=-1.0 default (ignored by this class)
        s.zero_mask = 0.0  # data/image_list_dataset_provided_mask.py: zero_mask=0.0 default
        s.mask_low_to_high = 0.0  # data/image_list_dataset_provided_mask.py: mask_low_to_high=0.0 default
        s.val_mask_low_to_high = 0.0  # data/image_list_dataset_provided_mask.py: mask_low_to_high=0.0 default
        s.mask_low_size = None  # data/image_list_dataset_provided_mask.py: mask_low_size=None default
        s.multi_image_mask = False  # data/image_list_dataset_provided_mask.py: multi_image_mask=False default
        s.erase_image_with_mask = -1.0  # data/image_list_dataset_provided_mask.py: erase_image_with_mask=-1.0 default (no erasing)
        s.return_data_keys = ("image", "mask")  # configs/naturalscene/{fdm,fdm_tuning}.yaml: return_data_keys
        s.stroken_mask_params = cm.stroke_mask_params()  # configs/naturalscene/{fdm,fdm_tuning}.yaml: stroken_mask_params (ignored)
    # Inference (configs/naturalscene/inpainting/dataloader.yaml).
    m.eval = ConfigDict()
    m.eval.dataset = "image_list_dataset_provided_mask"  # configs/naturalscene/inpainting/dataloader.yaml: validation_datasets[0].target
    m.eval.provided_mask_name = "irregular-mask"  # configs/naturalscene/inpainting/dataloader.yaml: provided_mask_name
    m.eval.provided_mask_list_file = "./data/image_list/naturalscene/mask_list05_06.txt"  # configs/naturalscene/inpainting/dataloader.yaml: provided_mask_list_file
    m.eval.available_mask_lists = ("01_02", "02_03", "03_04", "04_05", "05_06")  # hyudsl/FDM:data/image_list/naturalscene/mask_list{X}.txt
    m.eval.image_mask_paired = True  # configs/naturalscene/inpainting/dataloader.yaml: image_mask_paired

    # ------------------------------------------------------------------ training
    t = config.train = ConfigDict()
    t.codec = cm.train_phase(
        name="generator",  # configs/naturalscene/encoder_decoder.yaml: optimizers_and_schedulers[0].name
        source="configs/naturalscene/encoder_decoder.yaml",
        batch_size=16,  # configs/naturalscene/encoder_decoder.yaml: dataloader.batch_size
        warmup_steps=5000,  # configs/naturalscene/encoder_decoder.yaml: generator scheduler.params.warmup
        num_epochs=100,  # configs/naturalscene/encoder_decoder.yaml: solver.max_epochs
        trainable=("encoder", "quant_conv", "codebook_ema", "post_quant_conv", "decoder"),  # modeling/model/inpainting_model.py: parameters('generator') + EMA in train mode
        codec_yaml_trainable=True,  # configs/naturalscene/encoder_decoder.yaml: content_codec_config.params.trainable
        init_from="",  # trained from scratch
        loss=cm.edge_connect_loss(
            "image",
            gan_loss="nsgan",  # configs/naturalscene/encoder_decoder.yaml: loss_config.params.gan_loss
            g_gradient=5.0,  # configs/naturalscene/encoder_decoder.yaml: loss_config.params.g_gradient_loss_weight
            disc_start=10000,  # configs/naturalscene/encoder_decoder.yaml: loss_config.params.disc_start
            style_start=5000,  # configs/naturalscene/encoder_decoder.yaml: loss_config.params.style_start
            gradient_start=5000,  # configs/naturalscene/encoder_decoder.yaml: loss_config.params.gradient_start
            content_start=5000,  # configs/naturalscene/encoder_decoder.yaml: loss_config.params.content_start
            quantize=1.0,  # modeling/model/inpainting_model.py: quantize_loss passed as other_loss, added unweighted in losses.py
        ),
        disc=cm.discriminator(
            start_iteration=5000,  # configs/naturalscene/encoder_decoder.yaml: discriminator.start_iteration
            warmup_steps=5000,  # configs/naturalscene/encoder_decoder.yaml: discriminator scheduler.params.warmup
        ),
    )
    sampler_opt = cm.ConfigDict()
    sampler_opt.optimizer = "adamw"  # configs/naturalscene/transformer.yaml: optimizer.target torch.optim.AdamW
    sampler_opt.betas = (0.9, 0.95)  # configs/naturalscene/transformer.yaml: optimizer.params.betas
    sampler_opt.eps = 1e-8  # torch.optim.AdamW default eps (not set in the YAML)
    sampler_opt.weight_decay = 0.01  # configs/naturalscene/transformer.yaml: generator_config.params.weight_decay
    sampler_opt.decay_param_names = ("kernel",)  # modeling/vector_predictor/transformer.py: parameters(name): decay only Linear/Conv weights; biases, LayerNorm and pos_emb get 0
    sampler_opt.min_lr = 1e-5  # configs/naturalscene/transformer.yaml: scheduler.params.min_lr
    sampler_opt.warmup_lr = 3e-4  # configs/naturalscene/transformer.yaml: scheduler.params.warmup_lr
    t.sampler = cm.train_phase(
        name="transformer",  # configs/naturalscene/transformer.yaml: optimizers_and_schedulers[0].name
        source="configs/naturalscene/transformer.yaml (not used for the paper: PUT's transformer is loaded)",
        optimizer=sampler_opt,
        batch_size=2,  # configs/naturalscene/transformer.yaml: dataloader.batch_size
        warmup_steps=2000,  # configs/naturalscene/transformer.yaml: scheduler.params.warmup
        num_epochs=300,  # configs/naturalscene/transformer.yaml: solver.max_epochs
        random_quantize=0.3,  # configs/naturalscene/transformer.yaml: generator_config.params.random_quantize
        trainable=("sampler",),  # modeling/model/inpainting_model.py: parameters('transformer')
        codec_yaml_trainable=False,  # configs/naturalscene/transformer.yaml: content_codec_config.params.trainable
        init_from="./checkpoint/naturalscene/encoder_decoder.pth",  # configs/naturalscene/transformer.yaml: codec_path
        loss=cm.token_ce_loss(),
        disc=cm.no_discriminator(),
    )
    t.fdm = cm.train_phase(
        name="fdm",  # configs/naturalscene/fdm.yaml: optimizers_and_schedulers[0].name
        source="configs/naturalscene/fdm.yaml",
        batch_size=16,  # configs/naturalscene/fdm.yaml: dataloader.batch_size
        warmup_steps=5000,  # configs/naturalscene/fdm.yaml: fdm scheduler.params.warmup
        num_epochs=100,  # configs/naturalscene/fdm.yaml: solver.max_epochs
        trainable=("fdm",),  # modeling/model/inpainting_model.py: parameters('fdm')
        codec_yaml_trainable=False,  # configs/naturalscene/fdm.yaml: content_codec_config.params.trainable
        init_from="./checkpoint/naturalscene/encoder_decoder.pth",  # configs/naturalscene/fdm.yaml: codec_path
        loss=cm.edge_connect_loss(
            "qe",
            g_gradient=0.0,  # configs/naturalscene/fdm.yaml: loss_config.params.g_gradient_loss_weight
            g_style=0.0,  # configs/naturalscene/fdm.yaml: loss_config.params.g_style_loss_weight
            g_content=0.0,  # configs/naturalscene/fdm.yaml: loss_config.params.g_content_loss_weight
            g_adv=0.0,  # configs/naturalscene/fdm.yaml: loss_config.params.g_adv_loss_weight
            qe=1.0,  # modeling/modules/edge_connect/losses.py 'fdm' branch: l1_loss(pv, target) * g_rec_loss_weight (1)
        ),
        disc=cm.no_discriminator(),
    )
    t.fdm_tuning = cm.train_phase(
        name="fdm_decoder_tuning",  # configs/naturalscene/fdm_tuning.yaml: optimizers_and_schedulers[0].name
        source="configs/naturalscene/fdm_tuning.yaml",
        batch_size=16,  # configs/naturalscene/fdm_tuning.yaml: dataloader.batch_size
        warmup_steps=5000,  # configs/naturalscene/fdm_tuning.yaml: fdm_decoder_tuning scheduler.params.warmup
        num_epochs=100,  # configs/naturalscene/fdm_tuning.yaml: solver.max_epochs
        trainable=("post_quant_conv", "decoder", "fdm"),  # modeling/model/inpainting_model.py: parameters('fdm_decoder_tuning')
        codec_yaml_trainable=False,  # configs/naturalscene/fdm_tuning.yaml: content_codec_config.params.trainable
        codec_part_list=("decoder",),  # configs/naturalscene/fdm_tuning.yaml: content_codec_config.params.part_list
        init_from="./checkpoint/naturalscene/fdm.pth",  # configs/naturalscene/fdm_tuning.yaml: codec_path
        loss=cm.edge_connect_loss(
            "image+qe",
            gan_loss="nsgan",  # configs/naturalscene/fdm_tuning.yaml: loss_config.params.gan_loss
            g_gradient=5.0,  # configs/naturalscene/fdm_tuning.yaml: loss_config.params.g_gradient_loss_weight
            disc_start=10000,  # configs/naturalscene/fdm_tuning.yaml: loss_config.params.disc_start
            style_start=5000,  # configs/naturalscene/fdm_tuning.yaml: loss_config.params.style_start
            gradient_start=5000,  # configs/naturalscene/fdm_tuning.yaml: loss_config.params.gradient_start
            content_start=5000,  # configs/naturalscene/fdm_tuning.yaml: loss_config.params.content_start
            qe=1.0,  # modeling/modules/edge_connect/losses.py 'fdm_decoder_tuning' branch: lip_loss * g_rec_loss_weight (1)
        ),
        disc=cm.discriminator(
            start_iteration=5000,  # configs/naturalscene/fdm_tuning.yaml: discriminator.start_iteration
            warmup_steps=5000,  # configs/naturalscene/fdm_tuning.yaml: discriminator scheduler.params.warmup
        ),
    )

    config.run = cm.run_settings()
    config.perceptual = cm.perceptual_settings()
    # ------------------------------------------------------------------ inference
    inf = config.inference = ConfigDict()
    inf.codec_path = "./checkpoint/naturalscene/last.pth"  # configs/naturalscene/inpainting/model.yaml: codec_path
    inf.generator_path = "./checkpoint/naturalscene/generator.pth"  # configs/naturalscene/inpainting/model.yaml: generator_config.params.ckpt_path
    inf.generator_from_put = True  # configs/naturalscene/inpainting/model.yaml: "# load generator from put" (PUT key names, strict=False)
    inf.save_path = "./results/naturalscene"  # configs/naturalscene/inpainting/task_config.yaml: save_path
    inf.generate_with_token = False  # configs/naturalscene/inpainting/task_config.yaml: generate_with_token
    inf.with_token = ConfigDict()  # no configs/naturalscene/inpainting_with_token in the repository
    inf.with_token.codec_path = ""
    inf.with_token.generator_path = ""
    inf.with_token.save_path = ""
    inf.with_token.token_root = ""

    # ------------------------------------------------------------------ paper numbers
    config.reference = cm.reference()
    config.reference.table1_source = "FDM paper, Table 1, Places (small = 20-40 %, large = 40-60 % holes)"
    config.reference.fid_small = 18.46  # Table 1, Ours (PUT + FDM), Places, FID small
    config.reference.fid_large = 29.67  # Table 1, Ours (PUT + FDM), Places, FID large
    config.reference.lpips_small = 0.127  # Table 1, Ours (PUT + FDM), Places, LPIPS small
    config.reference.lpips_large = 0.230  # Table 1, Ours (PUT + FDM), Places, LPIPS large
    config.reference.put_fid_small = 20.25  # Table 1, PUT, Places, FID small
    config.reference.put_fid_large = 32.01  # Table 1, PUT, Places, FID large

    cm.apply_variant(config, variant)
    return cm.validate(config)
