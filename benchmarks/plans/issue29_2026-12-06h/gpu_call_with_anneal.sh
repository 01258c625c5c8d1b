#!/usr/bin/env bash
# 2026-12-06i: one lent machine for both open issues (starting a machine was refused five times this session,
# ~90 s of device time each, so one call does both): #29's six spike runs (gpu_call_spikes.sh) and, sharing the
# card, #28's annealing call (arbitrary_2026-12-06g/gpu_call.sh from the shipped G6 at a peak lr of 5e-5,
# cosine to 5e-6: the tail of one long schedule that the per-call warm-ups to 2e-4 never reached).
# Carry [".device"], after /work/aside4.sh-style moves that keep both scripts' folders. Returns three tars.
source .device/setup.sh
strip() { grep -v '^source .device/setup.sh' "$1"; }  # one pip install into /tmp/site, not three at once
(bash <(strip benchmarks/plans/issue29_2026-12-06h/gpu_call_spikes.sh) > /tmp/spikes.out 2>&1) &
sleep 15
LR=5e-5 DEADLINE=${DEADLINE:-470} bash <(strip benchmarks/plans/arbitrary_2026-12-06g/gpu_call.sh) > /tmp/anneal.out 2>&1
wait
mkdir -p $OUT/e && cp /tmp/spikes.out /tmp/anneal.out $OUT/e/
cd $OUT && tar cf logs.tar e && rm -r e && tar cf syn.tar syn && rm -r syn
ls -la $OUT; tail -n 6 /tmp/anneal.out; tail -n 12 /tmp/spikes.out
