"""TSGL (texture from structure with global/local SPADE normalisation; htyjers/ConvInpaint-TSGL):
SPADE blocks (spade), TSGL-LaMa (lama), TSGL-MEDFE (medfe), structure inputs (structure, rtv),
losses (losses) and the training phase (phase)."""
