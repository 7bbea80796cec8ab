r"""PUT + FDM on Places ("naturalscene"): the FDM paper's second setting, as Paris plus differences.

    python train.py --config places --config.phase=fdm_tuning --workdir runs/places
    python evaluate.py --config places --checkpoint fdm_tuning.pth --checkpoint generator.pth ...
    (places:tiny for the reduced CPU-test variant)

Reproduces hyudsl/FDM@3d3c30fd configs/naturalscene/{encoder_decoder,transformer,fdm,fdm_tuning}.yaml
and configs/naturalscene/inpainting/*.yaml (Park & Jung, WACV 2025, Table 1 "Places"): the same
architecture, optimisers and loss terms as configs/paris.py; only the values below differ.
  * Data: data/naturalscene/{train,val}, which must already hold the 8-category Places365-Challenge
    subset (mountain, mountain_path, mountain_snowy, butte, canyon, field/cultivated, tundra,
    valley; 237,777 training images). liuqk3/PUT's dataset filters these folders only when the
    name is exactly 'naturalscene'; the FDM YAMLs say 'naturalscene/train', so no filter runs.
  * Masks: the NVIDIA/PConv irregular testing masks in data/irregular-mask; FDM phases 2-3 use all
    12,000 (the image_list_dataset_provided_mask.py defaults: use_provided_mask_ratio [0, 1]).
  * Sampler: FDM did NOT train a transformer for naturalscene; inpainting/model.yaml loads PUT's
    released one (./checkpoint/naturalscene/generator.pth). `train.sampler` keeps transformer.yaml.
  * fdm_tuning: the discriminator starts at 5000 but its loss at 10000 (fdm_tuning.yaml).
"""

from fdm_jax.cli.config_loading import load_sibling

ALL_FILES = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG"  # configs/naturalscene/{fdm,fdm_tuning}.yaml: image_end_with


def get_config(arg=None):
    """Places (naturalscene) config. `arg`: None or '' (the paper setting) or 'tiny'."""
    cm = load_sibling(__file__, "put_fdm_common.py")
    variant = cm.parse_variant(arg, "configs/places.py")
    config = load_sibling(__file__, "paris.py").paper_config()

    d = config.data
    d.name = "naturalscene"
    d.train_name = "naturalscene/train"  # configs/naturalscene/*.yaml: train_datasets[0].params.name
    d.val_name = "naturalscene/val"  # configs/naturalscene/{transformer,fdm,fdm_tuning}.yaml: validation_datasets[0].params.name
    d.image_end_with.fdm = d.image_end_with.fdm_tuning = ALL_FILES
    d.train_preprocess.smallest_max_size = 288  # configs/naturalscene/*.yaml: train smallest_max_size (crop 256 of 288)
    d.eval.name = "naturalscene/val"  # configs/naturalscene/inpainting/dataloader.yaml
    d.eval.image_list_file = "./data/image_list/naturalscene/image_list.txt"  # inpainting/dataloader.yaml: image_list_file
    d.eval.num_images = 800  # hyudsl/FDM:data/image_list/naturalscene/image_list.txt (= liuqk3/PUT's naturalscenevalidation.txt)

    for stage in cm.PHASES + ("eval",):
        config.masks[stage].provided_mask_name = "irregular-mask"  # configs/naturalscene/*.yaml: provided_mask_name
    for stage in ("fdm", "fdm_tuning"):  # data/image_list_dataset_provided_mask.py defaults (the YAMLs set none)
        s = config.masks[stage]
        s.provided_mask_prob = 1.0  # use_provided_mask=1.0
        s.provided_mask_file_range = cm.provided_mask_file_range((0.0, 1.0))  # use_provided_mask_ratio [0.0, 1.0]: every mask
        s.mask_prob = -1.0  # mask=-1.0 (ignored by this class)
        s.mask_low_to_high = 0.0  # mask_low_to_high=0.0
        s.mask_low_size = None  # mask_low_size=None

    t = config.train
    for phase in ("codec", "fdm", "fdm_tuning"):
        t[phase].batch_size = 16  # configs/naturalscene/{encoder_decoder,fdm,fdm_tuning}.yaml: dataloader.batch_size
        t[phase].warmup_steps = 5000  # configs/naturalscene/*.yaml: scheduler.params.warmup
    for phase in ("codec", "fdm_tuning"):  # configs/naturalscene/{encoder_decoder,fdm_tuning}.yaml
        loss = t[phase].loss
        loss.disc_start = 10000  # loss_config.params.disc_start
        loss.content_start = loss.style_start = loss.gradient_start = 5000  # loss_config.params.*_start
        t[phase].disc.start_iteration = 5000  # discriminator.start_iteration
        t[phase].disc.warmup_steps = 5000  # discriminator scheduler.params.warmup
    t.sampler.init_from = t.fdm.init_from = "./checkpoint/naturalscene/encoder_decoder.pth"  # codec_path
    t.fdm_tuning.init_from = "./checkpoint/naturalscene/fdm.pth"  # configs/naturalscene/fdm_tuning.yaml: codec_path

    r = config.reference  # FDM paper, Table 1, Places
    r.table1_source = "FDM paper, Table 1, Places (small = 20-40 %, large = 40-60 % holes)"
    r.fid_small, r.fid_large = 18.46, 29.67  # Ours (PUT + FDM)
    r.lpips_small, r.lpips_large = 0.127, 0.230  # Ours (PUT + FDM)
    r.put_fid_small, r.put_fid_large = 20.25, 32.01  # PUT

    cm.apply_variant(config, variant)
    return cm.validate(config)
