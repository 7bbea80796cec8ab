"""The paper settings as ml_collections config files (`get_config(arg)`), one per setting; shipped
inside the package as fdm_jax/configs (setup.py) so `--config paris` works after `pip install`."""
