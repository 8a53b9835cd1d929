#!/bin/sh
# The measurements of the latent-grid recipe work (issue 13 item 2), in the order they were run.
# 1. quality-vs-steps on 256x256 centre crops: the recipe before (baseline) and now (current)
# 2. whole Kodak images at the medium and slow presets' time budgets (latentgrid), against the baselines of
#    benchmarks/results/kodak_rd.json and the Gaussian default's presets_kodak.json
set -e
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
PY=${PY:-python}
$PY benchmarks/lg_recipe_curves.py --images kodim03,kodim07 --crop 256 --steps 200,500,1000 --rates 0.35 \
    --variants baseline,current -o benchmarks/results/lg_recipe_crop256
$PY benchmarks/bench_presets.py --model latentgrid --presets medium --images kodim03,kodim07 \
    --rates 0.2,0.35,0.6,1.0 --note "latentgrid, recipe of issue 13 item 2 (JPEG-slope lambda prior, drift-aware rate goal); 1 torch thread per encode on a 2-core machine shared with 3 other engineers' jobs (load in each point)" \
    -o benchmarks/results/latentgrid_recipe_medium_kodak
$PY benchmarks/bench_presets.py --model latentgrid --presets slow --images kodim03 \
    --rates 0.2,0.35,0.6,1.0 --note "latentgrid, recipe of issue 13 item 2; slow preset (cap 280 s per encode); 1 torch thread per encode on a shared 2-core machine (load in each point)" \
    -o benchmarks/results/latentgrid_recipe_slow_kodak
# 3. seed spread of the current recipe at 500 steps (what a best-of-seeds encoder search could win)
$PY benchmarks/lg_recipe_curves.py --images kodim03,kodim07 --crop 256 --steps 500 --rates 0.35 --seeds 1,2 \
    --variants current -o benchmarks/results/lg_recipe_crop256_seeds
