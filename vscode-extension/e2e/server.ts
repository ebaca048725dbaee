/** Shared by the real-server tests: find `lacuna`, and a model for it to load. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const EXT_ROOT = path.resolve(__dirname, "..");
export const REPO_ROOT = path.resolve(EXT_ROOT, "..");

/** The `lacuna` executable: $LACUNA_SERVER, else the repository's .venv, else undefined. */
export function lacunaCommand(): string | undefined {
  const candidates = [process.env.LACUNA_SERVER, path.join(REPO_ROOT, ".venv", "bin", "lacuna")];
  return candidates.find((c) => !!c && fs.existsSync(c));
}

/** $LACUNA_MODEL, else a tiny random model built once under the system's temp folder. */
export function modelDir(): string {
  if (process.env.LACUNA_MODEL) return process.env.LACUNA_MODEL;
  const dir = path.join(os.tmpdir(), "lacuna-tiny");
  if (!fs.existsSync(path.join(dir, "config.json"))) {
    const python = path.join(REPO_ROOT, ".venv", "bin", "python");
    execFileSync(python, ["-c", `from infill.models.embedded.tiny import build_tiny_model; build_tiny_model(${JSON.stringify(dir)})`], {
      cwd: REPO_ROOT,
      stdio: "inherit",
    });
  }
  return dir;
}

export const SAMPLE = `def mean(values: list[float]) -> float:
    """The arithmetic mean of a non-empty list."""
    return [MASK]


def clamp(x: float, low: float, high: float) -> float:
    """Limit x to the range [low, high]."""
    return [MASK:6]
`;
