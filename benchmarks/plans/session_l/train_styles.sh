# Sourced by this folder's GPU calls: train bundled styles from scratch side by side on the lent machine.
# objective STYLE JSON: the style's recorded objective with JSON's fields set (e.g. '{"style_on_skin": 0.5}')
objective() { python3 -c "import json, sys; o = json.load(open('styles/$1.json'))['recipe']['objective']; o.update(json.loads(sys.argv[1])); print(json.dumps(o))" "$2"; }
# train STYLE TAG OBJECTIVE_CHANGES STYLE_WEIGHT [SEED]: 500 steps of the recorded recipe, logs in $OUT/e/TAG.log;
# ONLY="tag ..." runs those alone, TRAIN_LIMIT (s) bounds each run
train() {
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $2 "* ]] && return
  timeout ${TRAIN_LIMIT:-480} python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$2 --export /tmp/x/$2 \
    --from-records --only $1 --steps 500 --set $1:steps=500 --set "$1:objective=$(objective $1 "$3")" --set "$1:style_weight=$4" \
    --set "$1:seed=${5:-0}" > $OUT/e/$2.log 2>&1
  echo "$2 rc $? at $SECONDS s" >> $OUT/e/$2.log
}
