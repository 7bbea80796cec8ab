"""Writes the three notebooks of this folder (outputs stripped). Edit the cells here, then run

    python notebooks/make_notebooks.py

tests/test_notebooks.py checks that the committed .ipynb files are what this script writes.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
COLAB = "https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/{name}.ipynb"
BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(*parts: str, tags: tuple[str, ...] = ()):
    cell = new_code_cell("\n\n".join(textwrap.dedent(p).strip() for p in parts))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


# A PUT + FDM checkpoint (CHECKPOINT, CONFIG from the parameters cell), or random tiny weights when the
# checkpoint is missing: shared by the quickstart and the functional tour.
LOAD_PUT_FDM = '''
    ckpt = [repo_path(c) for c in CHECKPOINT] if isinstance(CHECKPOINT, (list, tuple)) else CHECKPOINT
    if isinstance(ckpt, str) and ckpt != "random":
        ckpt = repo_path(ckpt)
        if not Path(ckpt).exists():
            print(f"{ckpt} not found (run `python train.py` first): random tiny model, samples are noise")
            ckpt, CONFIG = "random", "configs/paris.py:tiny"
    model = fdm_jax.load(ckpt, config=repo_path(CONFIG) if CONFIG else None)
'''

SETUP = code('''
    # Setup. Colab (or any kernel without fdm_jax): clone the repository and install it.
    REPO_URL = "https://github.com/OWNER/REPO"  # <-- PLACEHOLDER: this project's GitHub URL
    import subprocess, sys
    from pathlib import Path

    try:
        import fdm_jax
    except ImportError:
        clone = Path("fdm_jax_repo").resolve()
        if not clone.exists():
            subprocess.check_call(["git", "clone", "--depth", "1", REPO_URL, str(clone)])
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", str(clone)])
        sys.path.insert(0, str(clone))  # this kernel started before the install
        import fdm_jax

    import jax
    IN_COLAB = "google.colab" in sys.modules
    print(f"JAX {jax.__version__}, backend {jax.default_backend()!r}, devices {jax.devices()}")
    print("accelerator:", {"gpu": "GPU", "tpu": "TPU"}.get(jax.default_backend(), "none (CPU: keep sizes small)"))
''')

PATHS = code('''
    # Repository and data paths: the notebook runs with cwd = notebooks/ or the repository root.
    def find_repo_root():
        for d in (Path.cwd(), *Path.cwd().parents):
            if (d / "fdm_jax").is_dir() and (d / "configs").is_dir():
                return d
        return Path(fdm_jax.__file__).resolve().parents[1]  # where the package lives (the Colab clone)

    REPO_ROOT = Path(REPO_ROOT) if REPO_ROOT else find_repo_root()
    DATA_DIR = Path(DATA_DIR) if DATA_DIR else REPO_ROOT.parent / "shared" / "data"

    def repo_path(spec):
        """'configs/x.py[:arg]' or 'runs/demo', relative to the repository (absolute paths as given)."""
        path, sep, arg = str(spec).partition(":")
        p = Path(path) if Path(path).is_absolute() else REPO_ROOT / path
        return f"{p}{sep}{arg}"

    print("REPO_ROOT", REPO_ROOT, "| DATA_DIR", DATA_DIR, "(found)" if DATA_DIR.is_dir() else "(missing)")
''')

UPLOAD = '''
    def upload_in_colab():
        """The path of a file uploaded in Colab (None elsewhere or when nothing is uploaded)."""
        if not IN_COLAB:
            return None
        from google.colab import files
        uploaded = files.upload()
        return next(iter(uploaded), None)
'''


# -- 1. quickstart ----------------------------------------------------------------------------------

def quickstart():
    return [
        md(f'''
            # Quickstart: pluralistic inpainting with PUT + FDM

            {BADGE.format(url=COLAB.format(name="quickstart"))}

            Load a checkpoint with `fdm_jax.load`, inpaint one photo and compare `NUM_SAMPLES` samples
            with and without the feature dequantization module (FDM). The same key draws the same
            tokens, so each column differs only by FDM.
        '''),
        SETUP,
        code('''
            # Parameters (CI overrides this cell with a tiny model).
            CHECKPOINT = "runs/demo"  # a `python train.py` run, original .pth files (a list) or "random"
            CONFIG = None             # None for fdm_jax runs; "configs/paris.py" for original .pth files
            IMAGE = None              # None: a photo from DATA_DIR (Colab: upload one); or a path
            MASK = None               # None: the photo's own mask, else random boxes; or a PNG (255 = hole)
            NUM_SAMPLES = 4
            TOP_K = None              # None: the config's top-K (paper: 50)
            SEED = 0
            REPO_ROOT = None          # None: found from the cwd
            DATA_DIR = None           # None: REPO_ROOT/../shared/data
        ''', tags=("parameters",)),
        PATHS,
        md("## Load the model"),
        code(LOAD_PUT_FDM, '''
            print(type(model).__name__, "at", model.image_size, "px; modules:", list(model.models))
        '''),
        md("## A photo and its mask (255 = hole)"),
        code(UPLOAD, '''

            import cv2
            import numpy as np
            from fdm_jax.io.images import random_mask, read_image, resize_and_center_crop

            sample_dir = DATA_DIR / "images" / "put_naturalscene_256_sample"
            IMAGE = IMAGE or upload_in_colab()
            if IMAGE is None and sample_dir.is_dir():
                IMAGE = sorted((sample_dir / "images").glob("*.png"))[0]
                MASK = MASK or sample_dir / "masks" / Path(IMAGE).name
            if IMAGE is None:  # no data folder: scikit-image's astronaut
                import skimage.data
                photo = skimage.data.astronaut()
            else:
                photo = read_image(IMAGE)
            size = model.image_size
            image, _ = resize_and_center_crop(photo, size)
            if MASK is not None:
                mask_png = cv2.imread(str(MASK), cv2.IMREAD_GRAYSCALE)
                hole = resize_and_center_crop(mask_png, size, interpolation=cv2.INTER_NEAREST)[0] > 127
            else:
                hole = random_mask(size, 0.4, SEED) == 0  # random_mask: 1 = known
            print("image", image.shape, image.dtype, "| hole ratio", round(float(hole.mean()), 3))
        '''),
        md("## Samples with and without FDM"),
        code('''
            import matplotlib.pyplot as plt

            key = jax.random.key(SEED)
            samples_fdm = model.inpaint(image, hole, key=key, num_samples=NUM_SAMPLES, top_k=TOP_K)
            samples_plain = model.inpaint(image, hole, key=key, num_samples=NUM_SAMPLES, top_k=TOP_K, use_fdm=False)
            masked = np.where(hole[..., None], 255, image).astype(np.uint8)

            fig, axes = plt.subplots(2, NUM_SAMPLES + 1, figsize=(2.2 * (NUM_SAMPLES + 1), 4.6), squeeze=False)
            panels = [(0, 0, image, "input"), (1, 0, masked, "masked input")]
            for k in range(NUM_SAMPLES):
                panels += [(0, k + 1, samples_fdm[k], f"sample {k + 1} (FDM)"),
                           (1, k + 1, samples_plain[k], f"sample {k + 1} (no FDM)")]
            for r, c, img, title in panels:
                axes[r, c].imshow(img)
                axes[r, c].set_title(title, fontsize=9)
            for ax in axes.flat:
                ax.axis("off")
            fig.tight_layout()
            plt.show()
            print("samples", samples_fdm.shape, "| mean |FDM - no FDM| in the hole:",
                  round(float(np.abs(samples_fdm.astype(int) - samples_plain)[:, hole].mean()), 2))
        '''),
    ]


# -- 2. functional tour -----------------------------------------------------------------------------

def functional_tour():
    return [
        md(f'''
            # A functional tour: codec, sampler, `jax.grad` and `jax.vmap`

            {BADGE.format(url=COLAB.format(name="functional_tour"))}

            Underneath `fdm_jax.load` are plain Flax modules (`model.models`) with their variables
            (`model.variables`) and pure functions (`fdm_jax.put_fdm.sampling`, `fdm_jax.lama.refine`). This notebook
            encodes images to tokens, looks at codebook usage, follows the sampler's fill order, takes
            `jax.grad` of the refinement loss with respect to the LaMa featuremap and `jax.vmap`s the
            sampler over keys.
        '''),
        SETUP,
        code('''
            # Parameters (CI overrides this cell with tiny models).
            CHECKPOINT = "runs/demo"  # PUT + FDM: a `python train.py` run, original .pth files (a list) or "random"
            CONFIG = None             # None for fdm_jax runs; "configs/paris.py" for original .pth files
            LAMA_CHECKPOINT = "big-lama/models/best.ckpt"  # Big-LaMa's best.ckpt (missing: random weights)
            LAMA_CONFIG = "configs/big_lama.py"
            LAMA_SIZE = 256           # the gradient section's image size (a multiple of 8)
            NUM_IMAGES = 5            # images encoded for the codebook histogram
            STEPS = 5                 # sampler steps run by hand
            NUM_SAMPLES = 8           # samples drawn by jax.vmap over keys
            ADAM_STEPS = 10           # feature-refinement steps at the end
            TOP_K = None              # None: the config's top-K
            SEED = 0
            REPO_ROOT = None
            DATA_DIR = None
        ''', tags=("parameters",)),
        PATHS,
        code('''
            import functools
            import cv2
            import jax.numpy as jnp
            import matplotlib.pyplot as plt
            import numpy as np
            from fdm_jax.put_fdm import sampling
            from fdm_jax.io.images import random_mask, read_image, resize_and_center_crop
            from fdm_jax.put_fdm.codec import PatchVQVAE

        ''', LOAD_PUT_FDM, '''
            codec, sampler, fdm = model.models["codec"], model.models["sampler"], model.models["fdm"]
            cv, sv, fv = model.variables["codec"], model.variables["sampler"], model.variables["fdm"]
            size, patch = model.image_size, codec.patch_size
            top_k = TOP_K or int(model.config.sampling.top_k)
            print(f"{size}px images, {patch}px patches, {codec.num_embed} codes "
                  f"({sampler.num_tokens} for known patches), top-K {top_k}")
        '''),
        md('''
            ## Images to tokens

            `codec.apply(variables, image, mask, method=PatchVQVAE.get_features)` returns the unquantized
            features, their quantized version, the token ids and the token types (1 known, 0 masked,
            2 partly masked). Without a mask every patch counts as known.
        '''),
        code('''
            folder = DATA_DIR / "images" / "put_naturalscene_256_sample"
            if folder.is_dir():
                files = sorted((folder / "images").glob("*.png"))[:NUM_IMAGES]
                photos = [read_image(f) for f in files]
                mask_pngs = [cv2.imread(str(folder / "masks" / f.name), cv2.IMREAD_GRAYSCALE) for f in files]
            else:  # no data folder (Colab): scikit-image's sample photos and random boxes
                import skimage.data
                photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()][:NUM_IMAGES]
                mask_pngs = [None] * len(photos)
            images = np.stack([resize_and_center_crop(p, size)[0] for p in photos])           # (B, S, S, 3) uint8
            holes = np.stack([resize_and_center_crop(m, size, interpolation=cv2.INTER_NEAREST)[0] > 127
                              if m is not None else random_mask(size, 0.4, i) == 0
                              for i, m in enumerate(mask_pngs)])                                 # (B, S, S) bool
            x = jnp.asarray(images, jnp.float32)                   # the modules take [0, 255] floats
            known = jnp.asarray(~holes, jnp.float32)[..., None]    # and masks with 1 = known

            encode = jax.jit(functools.partial(codec.apply, method=PatchVQVAE.get_features))
            full = encode(cv, x)
            tokens = np.asarray(full["token"])                     # (B, h, w)
            counts = np.bincount(tokens.ravel(), minlength=codec.num_embed)
            recon = codec.apply(cv, full["feature_quantize"], x, jnp.ones_like(known),
                                method=PatchVQVAE.decode_with_feature)
            print("features", full["feature"].shape, "tokens", tokens.shape,
                  f"| {np.count_nonzero(counts)} of {codec.num_embed} codes used")

            fig, axes = plt.subplots(1, 4, figsize=(14, 3), gridspec_kw={"width_ratios": [1, 1, 1, 2.5]})
            axes[0].imshow(images[0]); axes[0].set_title("input")
            axes[1].imshow(tokens[0], cmap="tab20"); axes[1].set_title("token id per patch")
            axes[2].imshow(np.clip(np.asarray(recon[0]), 0, 255).astype(np.uint8)); axes[2].set_title("decoded tokens")
            for ax in axes[:3]:
                ax.axis("off")
            axes[3].bar(np.arange(codec.num_embed), counts, width=1.0)
            axes[3].axvline(codec.masked_embed_start - 0.5, color="k", ls="--", lw=0.8)
            axes[3].set_title(f"codebook usage over {len(images)} images (known codes left of the line)")
            axes[3].set_xlabel("token id"); axes[3].set_ylabel("count")
            fig.tight_layout(); plt.show()
        '''),
        md('''
            ## The sampler, one step, then the whole loop

            The original's loop by hand for a few steps: the transformer's logits over the current
            sequence, `select_position` (the most confident unknown patch), `top_k_filter`, a draw, and
            the drawn code's embedding written into the sequence. `sample_tokens` runs the whole loop as one
            `lax.while_loop` and records `fill_positions`, the patch filled at each step: with the same
            keys its first steps are the ones above.
        '''),
        code('''
            i0 = 0  # the image followed below
            g = codec.apply(cv, x[i0:i0 + 1], known[i0:i0 + 1], method=PatchVQVAE.get_features)
            b, h, w, c = g["feature"].shape
            is_known = (g["token_type"] == 1).reshape(1, h * w)
            temperature = float(model.config.sampling.get("temperature", 1.0))

            # the first STEPS steps by hand, with the keys sample_tokens uses (image key, then fold_in(step))
            image_key = sampling.image_keys(jax.random.key(SEED), 1)[0]
            logits_fn = jax.jit(lambda seq: sampler.apply(sv, seq))
            seq, known_now, by_hand = g["feature"].reshape(1, h * w, c), is_known, []
            for n in range(min(STEPS, int((~is_known).sum()))):
                logits = logits_fn(seq)                                          # (1, L, K)
                p = int(sampling.select_position(logits, known_now)[0])          # most confident unknown patch
                if n == 0:
                    confidence = np.where(is_known, np.nan, np.asarray(logits.max(-1))).reshape(h, w)
                z = sampling.top_k_filter(logits[0, p], top_k) / temperature
                t = int(jax.random.categorical(jax.random.fold_in(image_key, n), z))
                seq = seq.at[0, p].set(codec.apply(cv, jnp.array([t]), method=PatchVQVAE.embed)[0])
                known_now = known_now.at[0, p].set(True)
                by_hand.append((p, t))
            print("by hand (patch, token):", by_hand)

            # the whole loop: one lax.while_loop
            run = jax.jit(lambda cv, sv, x, m, k: sampling.sample_tokens(codec, cv, sampler, sv, x, m, k,
                                                                         top_k=top_k, temperature=temperature))
            out = run(cv, sv, x[i0:i0 + 1], known[i0:i0 + 1], jax.random.key(SEED))
            positions = np.asarray(out["fill_positions"][0])
            n_filled = int(out["num_filled"][0])
            loop_steps = list(zip(positions[:len(by_hand)].tolist(), np.asarray(out["fill_tokens"][0, :len(by_hand)]).tolist()))
            print("sample_tokens' first steps:", loop_steps, "| same:", loop_steps == by_hand)
            fill_step = np.full(h * w, np.nan)
            fill_step[positions[:n_filled]] = np.arange(n_filled)
            fill_step = fill_step.reshape(h, w)
            decoded = codec.apply(cv, out["generated_feature"], x[i0:i0 + 1], known[i0:i0 + 1],
                                  method=PatchVQVAE.decode_with_feature)
            print(f"{n_filled} patches filled in {int(out['num_iterations'])} iterations")

            fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
            axes[0].imshow(np.where(holes[i0][..., None], 255, images[i0]).astype(np.uint8)); axes[0].set_title("masked input")
            im = axes[1].imshow(confidence, cmap="viridis"); axes[1].set_title("step-0 confidence (max logit)")
            fig.colorbar(im, ax=axes[1], fraction=0.046)
            im = axes[2].imshow(fill_step, cmap="magma"); axes[2].set_title("fill step per patch (blank = known)")
            fig.colorbar(im, ax=axes[2], fraction=0.046)
            axes[3].imshow(np.clip(np.asarray(decoded[0]), 0, 255).astype(np.uint8)); axes[3].set_title("decoded (no FDM)")
            for ax in axes:
                ax.axis("off")
            fig.tight_layout(); plt.show()
        '''),
        md('''
            ## Diversity with `jax.vmap` over keys

            `sampling.inpaint` is a pure function of a key: `jax.vmap` over `NUM_SAMPLES` keys draws every
            sample in one program. The per-pixel standard deviation across samples shows where they differ.
        '''),
        code('''
            def one_sample(key):
                o = sampling.inpaint(codec, cv, sampler, sv, fdm, fv, x[i0:i0 + 1], known[i0:i0 + 1], key, top_k=top_k)
                return sampling.composite(o["inpainted_image"], x[i0:i0 + 1], known[i0:i0 + 1])[0]

            keys = jax.random.split(jax.random.key(SEED), NUM_SAMPLES)
            diverse = np.asarray(jax.jit(jax.vmap(one_sample))(keys))              # (N, S, S, 3)
            std_map = diverse.std(axis=0).mean(axis=-1)                             # (S, S)
            print(f"samples {diverse.shape} | mean std in the hole {std_map[holes[i0]].mean():.3g}, "
                  f"outside {std_map[~holes[i0]].mean():.3g}")

            shown = min(NUM_SAMPLES, 4)
            fig, axes = plt.subplots(1, shown + 1, figsize=(2.8 * (shown + 1), 3))
            for k in range(shown):
                axes[k].imshow(diverse[k].astype(np.uint8)); axes[k].set_title(f"sample {k + 1} (FDM)"); axes[k].axis("off")
            im = axes[-1].imshow(std_map, cmap="inferno"); axes[-1].set_title(f"pixel std over {NUM_SAMPLES} samples")
            axes[-1].axis("off"); fig.colorbar(im, ax=axes[-1], fraction=0.046)
            fig.tight_layout(); plt.show()
        '''),
        md('''
            ## `jax.grad` of the refinement loss with respect to the featuremap

            Multiscale refinement (`fdm_jax.lama.refine`) splits the LaMa generator at its bottleneck:
            `z = front(image, mask)`, `output = rear(z)`, and optimises `z` at each finer pyramid level with
            the pure `refinement_loss(fr, variables, z, targets)`: mean |rear(z) - image| over known pixels
            plus mean |pyrdown(rear(z)) - lower-level result| over the eroded hole. `prepare_scale` builds
            `z` and the targets; the gradient is an ordinary `jax.grad`, shown here per position of the
            local and global (Fourier) branches, then a few Adam steps lower the loss.
        '''),
        code('''
            import optax
            from fdm_jax.lama.generator import front_rear

            lama_ckpt = repo_path(LAMA_CHECKPOINT) if LAMA_CHECKPOINT != "random" else "random"
            if lama_ckpt != "random" and not Path(lama_ckpt).exists():
                print(f"{lama_ckpt} not found (Big-LaMa's big-lama.zip holds it): random weights of configs/big_lama.py:tiny")
                lama_ckpt, LAMA_CONFIG = "random", "configs/big_lama.py:tiny"
            lama = fdm_jax.load(lama_ckpt, config=repo_path(LAMA_CONFIG))
            fr = front_rear(lama.generator.model)                    # pure front(v, image, mask), rear(v, z)
            lv = lama.variables

            img = jnp.asarray(resize_and_center_crop(photos[i0], LAMA_SIZE)[0], jnp.float32)[None] / 255.0  # LaMa: [0, 1]
            kn = jnp.asarray(cv2.resize(np.asarray(known[i0, ..., 0]), (LAMA_SIZE, LAMA_SIZE),
                                        interpolation=cv2.INTER_NEAREST))[None, ..., None]

            from fdm_jax.lama.refine import RefineConfig, prepare_scale, refine, refinement_loss

            # The lower pyramid level's result, as the refiner computes it (a 2-level pyramid).
            _, rec = refine(fr, lv, img, kn, RefineConfig(n_iters=2, min_side=LAMA_SIZE // 2), record=True)
            z, targets = prepare_scale(fr, lv, rec["pyramid_image"][-1], 1.0 - kn, rec["scale"][-2],
                                       orig_hw=(LAMA_SIZE, LAMA_SIZE))  # z = (z_local, z_global)

            def loss(z):
                return refinement_loss(fr, lv, z, targets)[0]

            loss_and_grad = jax.jit(jax.value_and_grad(loss))
            loss0, grad = loss_and_grad(z)
            grad_maps = [np.asarray(jnp.abs(gz[0]).sum(-1)) for gz in grad]
            print("z shapes", [t.shape for t in z], "| loss", float(loss0))

            opt = optax.adam(lama.config.refiner.lr)
            state, zs, losses = opt.init(z), z, [float(loss0)]
            for _ in range(ADAM_STEPS):
                _, gz = loss_and_grad(zs)
                updates, state = opt.update(gz, state, zs)
                zs = optax.apply_updates(zs, updates)
                losses.append(float(loss_and_grad(zs)[0]))

            fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
            axes[0].imshow(np.where(np.asarray(kn[0]) > 0, np.asarray(img[0]), 1.0)); axes[0].set_title("masked input")
            for ax, gm, name in zip(axes[1:3], grad_maps, ("local", "global")):
                im = ax.imshow(gm, cmap="viridis"); ax.set_title(f"|dloss/dz_{name}| per position")
                fig.colorbar(im, ax=ax, fraction=0.046)
            for ax in axes[:3]:
                ax.axis("off")
            axes[3].plot(losses, marker="o"); axes[3].set_title("loss over Adam steps on z"); axes[3].set_xlabel("step")
            fig.tight_layout(); plt.show()
        '''),
    ]


# -- 3. high resolution -----------------------------------------------------------------------------

def high_resolution():
    return [
        md(f'''
            # High-resolution inpainting: Big-LaMa with and without multiscale refinement

            {BADGE.format(url=COLAB.format(name="high_resolution"))}

            Big-LaMa is trained at 256 px; on a 1024 px photo its fills blur. Multiscale feature
            refinement (Kulshreshtha et al. 2022) runs it on an image pyramid and optimises the bottleneck
            features at each finer level (`fdm_jax.lama.refine`). Below: a `sun_hays80` photo, both results and
            zoomed crops of the hole.
        '''),
        SETUP,
        code('''
            # Parameters (CI overrides this cell with the tiny model and few steps).
            CHECKPOINT = "big-lama/models/best.ckpt"  # Big-LaMa's best.ckpt (big-lama.zip); missing: random tiny model
            CONFIG = "configs/big_lama.py"
            PHOTO = "img_001.jpg"       # in DATA_DIR/images/sun_hays80 (Colab: upload one); or a path
            MASK = None                 # None: the photo's mask in sun_hays80 if any, else a pconv_test mask
            PCONV_MASK = "04000.png"    # the fallback NVIDIA mask (hole ratio 0.2-0.3)
            MAX_SIDE = 1024             # the photo is resized to this longer side
            N_ITERS = None              # refiner steps per level (None: the config's 15)
            MIN_SIDE = None             # refiner pyramid control (None: the config's 512)
            CROP = 192                  # zoomed crop size in pixels
            REPO_ROOT = None
            DATA_DIR = None
        ''', tags=("parameters",)),
        PATHS,
        code(UPLOAD, '''

            import time
            import cv2
            import matplotlib.pyplot as plt
            import numpy as np
            from fdm_jax.io.images import read_image
            from fdm_jax.lama.refine import RefineConfig, pyramid_sizes

            ckpt = repo_path(CHECKPOINT) if CHECKPOINT != "random" else "random"
            if ckpt != "random" and not Path(ckpt).exists():
                print(f"{ckpt} not found (big-lama.zip holds it): random weights of configs/big_lama.py:tiny, results are noise")
                ckpt, CONFIG = "random", "configs/big_lama.py:tiny"
            lama = fdm_jax.load(ckpt, config=repo_path(CONFIG))

            folder = DATA_DIR / "images" / "sun_hays80"
            path = upload_in_colab() if IN_COLAB and not folder.is_dir() else None
            path = Path(path or (PHOTO if Path(PHOTO).is_absolute() else folder / PHOTO))
            photo = read_image(path)
            scale = MAX_SIDE / max(photo.shape[:2])
            photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            H, W = photo.shape[:2]
            own = [p for p in (path.parent / "masks" / f"{path.stem}.png", path.with_name(f"{path.stem}_mask.png")) if p.exists()]
            mask_file = MASK or (own[0] if own else DATA_DIR / "masks" / "pconv_test" / PCONV_MASK)
            if Path(mask_file).exists():
                hole = cv2.resize(cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE), (W, H),
                                  interpolation=cv2.INTER_NEAREST) > 127
            else:  # no data folder: a box in the middle
                hole = np.zeros((H, W), bool)
                hole[H // 3: 2 * H // 3, W // 3: 2 * W // 3] = True
            overrides = {k: v for k, v in (("n_iters", N_ITERS), ("min_side", MIN_SIDE)) if v is not None}
            rcfg = RefineConfig(**{**dict(lama.config.refiner), **overrides})
            print(f"{path.name} at {W}x{H}, mask {Path(mask_file).name if Path(mask_file).exists() else 'box'}, "
                  f"hole ratio {hole.mean():.3f}; refinement pyramid {pyramid_sizes(H, W, rcfg)[1]}, {rcfg.n_iters} iterations")
        '''),
        md("## Big-LaMa, then Big-LaMa + refinement"),
        code('''
            t0 = time.perf_counter()
            plain = lama.inpaint(photo, hole)
            t1 = time.perf_counter()
            refined = lama.inpaint(photo, hole, refine=True, **overrides)
            t2 = time.perf_counter()
            print(f"Big-LaMa {t1 - t0:.1f} s, with refinement {t2 - t1:.1f} s (both include compilation)")

            # the zoom window: the CROP x CROP square holding the most hole pixels
            c = min(CROP, H, W)
            S = cv2.integral(hole.astype(np.uint8))              # (H + 1, W + 1) summed-area table
            sums = S[c:, c:] - S[:-c, c:] - S[c:, :-c] + S[:-c, :-c]  # hole pixels per window, by top-left corner
            cy, cx = np.unravel_index(np.argmax(sums), sums.shape)
            window = (slice(cy, cy + c), slice(cx, cx + c))
            masked = np.where(hole[..., None], 255, photo).astype(np.uint8)
            panels = [(photo, "input"), (masked, "masked input"), (plain, "Big-LaMa"), (refined, "Big-LaMa + refinement")]

            fig, axes = plt.subplots(2, 4, figsize=(16, 8.5))
            for k, (img, title) in enumerate(panels):
                axes[0, k].imshow(img); axes[0, k].set_title(title)
                axes[0, k].add_patch(plt.Rectangle((cx, cy), c, c, fill=False, ec="red", lw=1.5))
                axes[1, k].imshow(img[window], interpolation="nearest"); axes[1, k].set_title(f"{title} (zoom)")
            for ax in axes.flat:
                ax.axis("off")
            fig.tight_layout(); plt.show()
            diff = np.abs(refined.astype(int) - plain)[hole].mean()
            print(f"mean |refined - plain| in the hole: {diff:.2f} (0-255)")
        '''),
    ]


NOTEBOOKS = {"quickstart": quickstart, "functional_tour": functional_tour, "high_resolution": high_resolution}


def build(name: str):
    nb = new_notebook(cells=NOTEBOOKS[name]())
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i}"  # fixed ids: the output is reproducible
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",  # Colab: ask for a GPU runtime
        "colab": {"provenance": []},
    }
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


if __name__ == "__main__":
    for name in (sys.argv[1:] or NOTEBOOKS):
        (HERE / f"{name}.ipynb").write_text(render(name))
        print("wrote", HERE / f"{name}.ipynb")
