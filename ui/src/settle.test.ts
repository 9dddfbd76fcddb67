import { describe, expect, it } from "vitest";
import { meanMove } from "./settle";

describe("meanMove", () => {
  it("is zero when nothing moved and relative to the drawing's extent", () => {
    const a = new Float64Array([0, 0, 100, 0, 0, 100]);
    expect(meanMove(a, a)).toBe(0);
    const b = new Float64Array([1, 0, 101, 0, 1, 100]); // every node moved 1 in a 100-wide drawing
    expect(meanMove(a, b)).toBeCloseTo(0.01, 6);
  });
  it("is infinite when the node set changed", () => {
    expect(meanMove(new Float64Array(2), new Float64Array(4))).toBe(Infinity);
    expect(meanMove(new Float64Array(0), new Float64Array(0))).toBe(Infinity);
  });
});
