#!/usr/bin/env bash
# A tcpwalk scan split across a Slurm job array: array task k runs shard k
# of N with the same seed and arguments, and writes nmap XML to $RESULTS
# (a directory every node sees). Submit, then merge after the array:
#
#   job=$(sbatch --parsable --array=1-4 --export=ALL,TARGETS=198.18.0.0/24,SEED=7 scripts/slurm-scan.sh)
#   sbatch --dependency=afterok:$job --wrap 'tcpwalk merge -oA results/merged results/shard-*.xml'
#
# The array's size is the number of shards (any range: task IDs are counted
# from the array's first). SEED must be one number for every task.
# Environment: TARGETS (required), SEED (required), PORTS (1-1024), RATE
# (1000), RESULTS (results), TCPWALK (tcpwalk), TCPWALK_GLOBAL_OPTS
# (options before the command, e.g. --netns NAME).
#SBATCH --job-name=tcpwalk-scan
#SBATCH --ntasks=1
#SBATCH --time=01:00:00
#SBATCH --output=tcpwalk-scan-%A_%a.log
set -euo pipefail

: "${TARGETS:?set TARGETS, e.g. 198.18.0.0/24}"
: "${SEED:?set SEED, one number for every shard}"
: "${SLURM_ARRAY_TASK_ID:?run as a job array: sbatch --array=1-N scripts/slurm-scan.sh}"
: "${SLURM_ARRAY_TASK_COUNT:?run as a job array: sbatch --array=1-N scripts/slurm-scan.sh}"
PORTS=${PORTS:-1-1024}
RATE=${RATE:-1000}
RESULTS=${RESULTS:-results}
TCPWALK=${TCPWALK:-tcpwalk}

shard=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-1} + 1))
n=$SLURM_ARRAY_TASK_COUNT
mkdir -p "$RESULTS"
# TARGETS and TCPWALK_GLOBAL_OPTS are word lists on purpose: several targets, several options.
# shellcheck disable=SC2086
exec "$TCPWALK" ${TCPWALK_GLOBAL_OPTS:-} scan -p "$PORTS" --rate "$RATE" --seed "$SEED" --shard "$shard/$n" \
	--no-progress -oX "$RESULTS/shard-$shard-of-$n.xml" $TARGETS
