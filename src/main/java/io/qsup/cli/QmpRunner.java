package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpDisconnectedException;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpTimeoutException;
import java.time.Duration;

/**
 * Runs a {@link QmpScript} over a connected session and prints what happens; shared by every form of
 * {@code qsup qmp}, which differ only in how they obtain the session.
 */
final class QmpRunner {

    /**
     * How to run.
     *
     * @param keepGoing   go on after a failed command instead of stopping
     * @param repeat      how many times to run the whole script
     * @param events      print every event seen while running
     * @param waitEvent   after the commands, wait for this event (armed before the first command); null for none
     * @param timeout     deadline of each command and of the event wait
     * @param batch       batch mode: failed commands also print their error object, so output lines match commands
     * @param verbose     print each message as sent ({@code --> {...}}) on stderr
     */
    record Settings(boolean keepGoing, int repeat, boolean events, String waitEvent, Duration timeout, boolean batch,
            boolean verbose) {}

    private final QmpOutput output;
    private final Settings settings;

    QmpRunner(QmpOutput output, Settings settings) {
        this.output = output;
        this.settings = settings;
    }

    /** Runs the script and returns the exit code. */
    int run(QmpTarget target, QmpScript script) {
        QmpClient client = target.client();
        AutoCloseable eventPrinter = settings.events() ? target.onEvent(output::event) : null;
        QmpTarget.Waiter waiter = settings.waitEvent() != null ? target.expect(settings.waitEvent()) : null;
        try {
            boolean failed = false;
            outer:
            for (int round = 0; round < settings.repeat(); round++) {
                for (QmpScript.Step step : script.steps()) {
                    Outcome o = runStep(target, step);
                    if (o == Outcome.GONE) {
                        return ExitCodes.ERROR;
                    }
                    if (o == Outcome.FAILED) {
                        failed = true;
                        if (!settings.keepGoing()) {
                            break outer;
                        }
                    }
                }
            }
            if (waiter != null && !(failed && !settings.keepGoing())) {
                if (!awaitEvent(waiter)) {
                    return ExitCodes.ERROR;
                }
            }
            return failed ? ExitCodes.ERROR : ExitCodes.OK;
        } finally {
            if (waiter != null) {
                waiter.close();
            }
            if (eventPrinter != null) {
                drainAfterDisconnect(client);
                try {
                    eventPrinter.close();
                } catch (Exception ignored) {
                    // removing a listener cannot fail
                }
            }
        }
    }

    /** After {@code quit}, events sent just before EOF (SHUTDOWN) may still be in delivery: let them print. */
    private static void drainAfterDisconnect(QmpClient client) {
        if (client.isConnected()) {
            return;
        }
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        client.onDisconnect(e -> done.countDown());
        try {
            done.await(2, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** How one command went: done, refused (or timed out), or the session is gone. */
    enum Outcome { OK, FAILED, GONE }

    /** Sends one command and prints its result or error. */
    Outcome runStep(QmpTarget target, QmpScript.Step step) {
        String prefix = step.where().isEmpty() ? "" : step.where() + ": ";
        if (settings.verbose()) {
            output.sent(step.message());
        }
        try {
            JsonNode ret = target.send(step.message(), settings.timeout());
            output.result(ret == null ? JsonNodeFactory.instance.objectNode() : ret);
            return Outcome.OK;
        } catch (QmpErrorException e) {
            output.error(prefix + e.errorClass() + ": " + e.desc());
            if (settings.batch()) {
                ObjectNode err = JsonNodeFactory.instance.objectNode();
                err.putObject("error").put("class", e.errorClass()).put("desc", e.desc());
                output.result(err);
            }
            return Outcome.FAILED;
        } catch (QmpTimeoutException e) {
            output.error(prefix + "timeout: " + e.getMessage());
            return Outcome.FAILED;
        } catch (QmpDisconnectedException e) {
            if (step.command().equals("quit")) {
                return Outcome.OK; // QEMU may close before its reply is read; that is what quit asks for
            }
            output.error(prefix + e.getMessage());
            return Outcome.GONE;
        } catch (QmpException e) {
            output.error(prefix + e.getMessage());
            return Outcome.FAILED;
        }
    }

    private boolean awaitEvent(QmpTarget.Waiter waiter) {
        try {
            JsonNode e = waiter.await(settings.timeout());
            if (!settings.events()) {
                output.event(e);
            }
            return true;
        } catch (QmpTimeoutException e) {
            output.error("timed out: " + e.getMessage());
            return false;
        } catch (QmpException e) {
            output.error(e.getMessage());
            return false;
        }
    }
}
