export function Sparkline({ points, label, span = "over the last hour" }: { points: [number, number][]; label: string; span?: string }) {
  const w = 200, h = 30;
  const vals = points.map((p) => p[1]).filter((v) => Number.isFinite(v));
  if (points.length < 2 || vals.length === 0) return <span className="muted">no samples yet</span>;
  const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
  const max = Math.max(...vals, 1e-9), min = Math.min(...vals, 0);
  const d = points
    .filter((p) => Number.isFinite(p[1]))
    .map((p, i) => `${i ? "L" : "M"}${(((p[0] - t0) / (t1 - t0 || 1)) * w).toFixed(1)},${(h - ((p[1] - min) / (max - min || 1)) * h).toFixed(1)}`)
    .join(" ");
  return (
    <svg width={w} height={h} role="img" aria-label={`${label} ${span}`}>
      <path d={d} fill="none" stroke="#3a7bd5" strokeWidth={1.5} />
    </svg>
  );
}
