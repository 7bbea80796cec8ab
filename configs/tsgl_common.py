"""Training settings shared by configs/tsgl_lama.py and configs/tsgl_medfe.py (not a config itself).

Both TSGL variants train through fdm_jax's one loop with the same data layout, the same training masks
(the original's dataset_loader1.py, used by both train/ folders) and the same run bookkeeping; only
the constants that differ between the two original train.py files stay in the variant's config.
Files are of htyjers/ConvInpaint-TSGL@e9f6438.
"""

import ml_collections


def training_data(d, image_size):
    """The training-image fields of config.data (set on `d`, which holds the variant's other fields).
    `loader` below is train/dataset_loader.py (MEDFE) or train/dataset_loader_lama.py (LaMa)."""
    d.source = "folder"  # images from data_root/train_name (fdm_jax.data.sources.FolderImageSource); or 'tfds' / 'demo'
    d.data_root = "./data"  # main.py: --dataset_dir / --maskdataset_dir are placeholders (run_train.py: 'dataset_dir')
    d.train_name = "images/places2/train"  # this port's layout under data_root (the original: --dataset_dir)
    d.val_name = "images/places2/val"
    d.train_list_file = ""  # '' = every image of the folder
    d.val_list_file = ""
    d.tfds_name = ""  # with source 'tfds': a built dataset, e.g. 'image_folder/places2'
    d.tfds_data_dir = ""
    d.image_end_with = ml_collections.ConfigDict()
    d.image_end_with.eval = "bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG,JPG"  # extensions FolderImageSource reads
    d.train_preprocess = ml_collections.ConfigDict()
    d.train_preprocess.size = image_size  # loader: random 256 crop
    d.train_preprocess.smallest_max_size = image_size  # this port: the pipeline scales the short side to the
    #   crop first (a no-op on Places2's 256x256 images); the original crops the raw image (PIL pads smaller ones)
    d.train_preprocess.random_crop = True  # loader define_transformer: random.randint crop position
    d.train_preprocess.horizon_flip = True  # loader: `if random.random() > 0.5: __flip`
    d.train_wraparound = True  # canny.image_to_edge on the Normalize(0.5, 0.5)-ed tensor (its ToPILImage wraps)


def training_masks():
    """config.masks.generator: the original's training masks."""
    mg = ml_collections.ConfigDict()
    # dataset_loader1.py: every file under --maskdataset_dir (os.walk), shuffled, Resize(NEAREST), random flip,
    # M = 1 - ToTensor(convert('1')). The folder is not named; the paper trains with the NVIDIA irregular masks,
    # so: all 12,000 NVIDIA testing masks (data_root/masks), drawn uniformly per example by the pipeline
    # (fdm_jax.data.masks: image_list_dataset_provided_mask path; cv2 nearest resize, no flip).
    mg.dataset = "image_list_dataset_provided_mask"  # fdm_jax.data.masks.training_masks: provided mask only
    mg.provided_mask_only = True
    mg.provided_mask_name = "masks"  # data_root/masks: NVIDIA irregular masks, 255 = hole
    mg.provided_mask_prob = 1.0
    mg.provided_mask_file_range = (0, 12000)  # all six hole-ratio buckets (1-60 %)
    mg.erase_image_with_mask = -1.0  # no erasing (TSGL has none)
    mg.mask_prob = 1.0
    mg.zero_mask = 0.0
    mg.mask_low_to_high = 0.0
    mg.stroken_mask_params = None  # stroke masks only where no mask folder is used (the tiny variant)
    return mg


def run_settings(tg):
    """config.run for train.generator `tg`: this port's bookkeeping (the original saves once per epoch)."""
    r = ml_collections.ConfigDict()
    r.phases = ("generator",)
    r.max_steps = -1  # > 0: stop after this many iterations (the lr schedule keeps num_epochs)
    r.global_batch_size = tg.get_ref("batch_size")  # the original's batch is split over GPUs (DataParallel)
    r.log_every = 50  # this port: iterations between metrics rows (metrics.jsonl, TensorBoard)
    r.checkpoint_every = 1000  # this port (the original saves G_<epoch % 15>.pth once per epoch)
    r.keep_checkpoints = 3
    r.sample_every = 1000
    r.sample_images = 4
    r.tensorboard = True
    return r


def tiny_training(config):
    """The ':tiny' variants' training: the scikit-image demo images and stroke masks (no download),
    128x128 crops; tests point data_root at ../shared/data instead (tests/test_tsgl_train.py)."""
    config.image_size = 128
    d, mg, tg, r, ref = config.data, config.masks.generator, config.train.generator, config.run, config.reference
    d.train_preprocess.size = 128
    d.train_preprocess.smallest_max_size = 128
    d.source = "demo"
    d.num_workers = 0
    mg.provided_mask_only = False
    mg.provided_mask_prob = 0.0  # stroke masks (fdm_jax.data.masks.stroke_mask defaults)
    tg.batch_size = 2
    tg.num_epochs = 1
    r.log_every = 1
    r.checkpoint_every = 100
    r.sample_every = 0
    ref.params_M = None  # no published numbers for the reduced model
    ref.gflops = None
    ref.note = None
