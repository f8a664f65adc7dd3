package io.qsup.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A private tmux server for tests that need a real pseudo-terminal: its own socket name (with the test JVM's pid), so
 * tests never touch another tmux, and {@link #close()} kills only this server.
 */
public final class Tmux implements AutoCloseable {
    private final String socket;

    public Tmux(String name) {
        this.socket = "qsup-" + name + "-" + ProcessHandle.current().pid();
    }

    /** Runs {@code tmux -L SOCKET ARGS...} and returns its output (a pane capture, for example). */
    public String run(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("tmux", "-L", socket));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(20, TimeUnit.SECONDS)) {
            p.destroyForcibly();
        }
        return out;
    }

    /**
     * Captures with {@code capture} every 200 ms until {@code p} holds, for up to 60 s; fails with the last capture.
     */
    public static String await(Callable<String> capture, Predicate<String> p, String what) throws Exception {
        String pane = "";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            pane = capture.call();
            if (p.test(pane)) {
                return pane;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("waited 60 s for " + what + "; the terminal shows:\n" + pane);
    }

    @Override
    public void close() throws IOException, InterruptedException {
        run("kill-server");
    }
}
