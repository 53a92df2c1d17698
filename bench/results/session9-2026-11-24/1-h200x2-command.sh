# nvidia-h200-x2, at c36a955 (binaries built here, carried as build-cuda/stage-dp)
nvidia-smi topo -m | head -4; STAGE=build-cuda/stage-dp bash tools/device_run.sh dp
