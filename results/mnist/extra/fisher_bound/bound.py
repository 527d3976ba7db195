import time, torch, timm, sys
from unlearnbench.fisher import diagonal_fisher, layerwise_coverage
from unlearnbench.perf_sections import fisher_bound
torch.manual_seed(0)
n = int(sys.argv[1]); x = torch.randn(n, 1, 32, 32); y = torch.zeros(n, dtype=torch.long)
for name in sys.argv[2:]:
    m = timm.create_model(name, num_classes=10, in_chans=1).eval()
    closed, rest = layerwise_coverage(m)
    def t(fn):
        fn(); s = time.perf_counter(); fn(); return time.perf_counter() - s
    b = t(lambda: fisher_bound(m, x)); l = t(lambda: diagonal_fisher(m, [(x, y)], "true"))
    print(f"| {name} | {len(rest)} | {b:.2f} | {l:.2f} | {l/b:.2f} |", flush=True)
