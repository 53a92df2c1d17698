# nvidia-h100-x1, final code: configs/h100.toml end to end, then the demo on cuda
S=build-cuda/stage-v; export LD_LIBRARY_PATH=$PWD/$S/lib
/usr/bin/time -f "wall %E" $S/crucible run configs/h100.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/h100 > $OUT/h100.txt 2>&1; tail -2 $OUT/h100.txt
/usr/bin/time -f "wall %E" $S/crucible run configs/demo.toml --set run.device=cuda --set run.out_dir=/tmp/demo > $OUT/demo.txt 2>&1; tail -2 $OUT/demo.txt
for d in h100 demo; do python3 -c "
import json,sys; r=json.load(open('/tmp/$d/report.json'))['stages']
print('$d', ' '.join(f\"{k} {v['before']['accuracy']:.3f}->{v['after']['accuracy']:.3f}\" if 'before' in v and 'after' in v else (f\"{k} {v['after']['accuracy']:.3f}\" if 'after' in v else k) for k,v in r.items()))"; done
