package io.qsup.daemon;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * POSIX signal handling for qsupd through {@code sun.misc.Signal} (module jdk.unsupported, exported and stable in
 * every JDK since 9; the JDK has no public API for SIGHUP). Handlers run on a JVM-made thread; each hands its work to
 * a named virtual thread and returns at once.
 */
final class Signals {
    private static final Logger log = LoggerFactory.getLogger(Signals.class);

    private Signals() {}

    /** Runs {@code action} on a virtual thread {@code signal-NAME} whenever {@code name} (HUP, TERM, INT) arrives. */
    static void on(String name, Runnable action) {
        try {
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> Thread.ofVirtual().name("signal-" + name)
                    .start(() -> {
                        log.info("received SIG{}", name);
                        action.run();
                    }));
        } catch (IllegalArgumentException e) {
            log.warn("cannot handle SIG{}: {}", name, e.getMessage());
        }
    }
}
