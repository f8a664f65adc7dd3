package io.qsup.vm;

import java.util.ArrayDeque;
import java.util.Deque;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a launch as named steps and, if one fails, undoes the finished ones in reverse (compare firecracker-go-sdk's
 * {@code HandlerList} and {@code doCleanup}). Not thread-safe: one launch, one thread.
 */
final class LaunchSteps {
    private static final Logger log = LoggerFactory.getLogger(LaunchSteps.class);

    /** The body of a step. */
    @FunctionalInterface
    interface Body {
        void run() throws Exception;
    }

    private final String vm;
    private final Deque<Runnable> cleanups = new ArrayDeque<>();
    private final Deque<String> names = new ArrayDeque<>();

    LaunchSteps(String vm) {
        this.vm = vm;
    }

    /**
     * Runs one step; its cleanup is remembered for {@link #unwind()}.
     *
     * @throws LaunchFailedException wrapping whatever the step threw, naming the step
     */
    void step(String name, Body body, Runnable cleanup) throws LaunchFailedException {
        log.info("VM {}: launch step {}", vm, name);
        try {
            body.run();
        } catch (LaunchFailedException e) {
            throw e;
        } catch (Exception e) {
            throw new LaunchFailedException(vm, name, e.getMessage(), "", e);
        }
        cleanups.push(cleanup == null ? () -> {} : cleanup);
        names.push(name);
    }

    /** Undoes the finished steps, last first; a failing cleanup is logged and the others still run. */
    void unwind() {
        while (!cleanups.isEmpty()) {
            Runnable c = cleanups.pop();
            String name = names.pop();
            try {
                c.run();
                log.info("VM {}: undid launch step {}", vm, name);
            } catch (RuntimeException e) {
                log.warn("VM {}: cleanup of launch step {} failed: {}", vm, name, e.toString());
            }
        }
    }
}
