import time, torch, timm, sys, importlib.util
spec = importlib.util.spec_from_file_location("fisher_old", "/tmp/fisher_old.py"); old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
from unlearnbench.fisher import diagonal_fisher
torch.manual_seed(0)
n = 16; x = torch.randn(n, 1, 32, 32); y = torch.zeros(n, dtype=torch.long)
for name in sys.argv[1:]:
    m = timm.create_model(name, num_classes=10, in_chans=1).eval()
    def t(fn):
        fn(); s = time.perf_counter(); r = fn(); return time.perf_counter() - s, r
    to, fo = t(lambda: old.diagonal_fisher(m, [(x, y)], "true")); tn, fn_ = t(lambda: diagonal_fisher(m, [(x, y)], "true"))
    err = max(float(((fo[k] - fn_[k]).abs() / (fo[k].abs().max() + 1e-30)).max()) for k in fo)
    print(f"| {name} | {to:.2f} | {tn:.2f} | {to/tn:.1f}x | max rel diff {err:.1e} |", flush=True)
