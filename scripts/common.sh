# Sourced by the ablation scripts, from the repository root: what they share.
U=../shared/data/wflw/WFLW_annotations/unlabeled_images.txt
POOL68=runs/teachers/wflw68/pool.npz      # the two-teacher 68-point pool the zoo's 300-W entries learned from

# pool OUT TEACHER...: a 68-point pseudo-label pool of the TEACHERs on WFLW's unlabelled photos, built once.
pool() { local out=$1; shift
         [ -f "$out/pool.npz" ] || python -m train.teachers 68 --data ../shared/data --teachers "$@" \
             --unlabeled $U --out "$out" --quiet; }

# weights_at ENTRY COMMIT OUT: the zoo entry's weights as committed at COMMIT, copied to the folder OUT once.
weights_at() { local entry=$1 commit=$2 out=$3 f
               [ -f "$out/model.safetensors" ] && return
               mkdir -p "$out"
               for f in model.safetensors config.json; do git show "$commit:zoo/weights/$entry/$f" > "$out/$f"; done; }
