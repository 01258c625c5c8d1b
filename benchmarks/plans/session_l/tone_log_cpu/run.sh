cd /work/main
export CVTOOLS_SHARED=/work/shared
P=/work/venv/bin/python
$P benchmarks/plans/issue29_mona_distil_2026-12-06/cpu_finetune.py plain 300 192 4 '{}' > /tmp/ft_plain.log 2>&1
$P benchmarks/plans/issue29_mona_distil_2026-12-06/cpu_finetune.py log2.5 300 192 4 '{"tone_log": true, "tone_weight": 2.5}' > /tmp/ft_log.log 2>&1
$P benchmarks/plans/session_l/bear_ratio.py /work/shared /tmp/bear_ft.png mona /tmp/cd/plain/mona.json /tmp/cd/log2.5/mona.json > /tmp/bear_ft.log 2>&1
