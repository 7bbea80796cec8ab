"""Big-LaMa (Suvorov et al., WACV 2022) and its multiscale feature refinement
(geomagical/lama-with-refiner): FFC blocks (ffc), the generator (generator), refinement (refine)."""
