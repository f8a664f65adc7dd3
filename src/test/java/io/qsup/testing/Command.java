package io.qsup.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A short-lived helper command (ip, socat) run to completion with a deadline; its output goes to a temp file rather
 * than a pipe, so a child that forks and lingers can never hang the test on a pipe it still holds.
 */
public final class Command {
    /** The exit code (-1 if killed at the deadline) and stdout and stderr together. */
    public record Result(List<String> argv, int exit, String output) {
        public boolean ok() {
            return exit == 0;
        }

        /** Returns this result if the command exited 0, else fails naming the command and its output. */
        public Result orThrow() {
            if (!ok()) {
                throw new IllegalStateException("'" + String.join(" ", argv) + "' exited with " + exit + ": "
                        + output.strip());
            }
            return this;
        }
    }

    private Command() {}

    public static Result run(Duration timeout, List<String> argv) {
        Path out = null;
        try {
            out = Files.createTempFile("qsup-cmd", ".out");
            Process p = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            int exit;
            if (p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                exit = p.exitValue();
            } else {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                exit = -1;
            }
            return new Result(List.copyOf(argv), exit, Files.readString(out));
        } catch (IOException e) {
            throw new IllegalStateException("cannot run '" + String.join(" ", argv) + "': " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running '" + String.join(" ", argv) + "'", e);
        } finally {
            if (out != null) {
                out.toFile().delete();
            }
        }
    }

    public static Result run(String... argv) {
        return run(Duration.ofSeconds(30), List.of(argv));
    }
}
