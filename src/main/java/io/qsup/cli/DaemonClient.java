package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpConnectException;
import io.qsup.qmp.QmpDisconnectedException;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpEvent;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The CLI's session with qsupd over the control socket, which speaks QMP; built on the project's own QMP client.
 *
 * <p>Not thread-safe beyond what {@link QmpClient} offers; one per command invocation.
 */
final class DaemonClient implements AutoCloseable {
    /** Where qsupd listens when neither {@code --socket} nor {@code QSUP_SOCKET} says otherwise. */
    static final Path DEFAULT_SOCKET = Path.of("/run/qsup/qsupd.sock");

    private final QmpClient client;
    private final Path socket;
    /** The deadline of a call that names none: the verb's, given at {@link #connect}. */
    private final Duration timeout;

    /** A connection {@link #connectEarly} opens while picocli builds the verb; taken by the first matching connect. */
    private static final AtomicReference<Early> early = new AtomicReference<>();

    private record Early(Path socket, CompletableFuture<QmpClient> client) {}

    private DaemonClient(QmpClient client, Path socket, Duration timeout) {
        this.client = client;
        this.socket = socket;
        this.timeout = timeout;
    }

    /**
     * Starts connecting to {@code socket} on a thread of its own, so that the connect, the greeting and the
     * negotiation (with the JDK's first unix socket, about 40 ms of a {@code qsup list}) overlap picocli building the
     * verb. The first {@link #connect} to the same path takes this connection; one to another path, or none, leaves
     * it to {@link #discardEarly}. A failure here is never reported: the verb's own connect tries again and says why.
     */
    static Thread connectEarly(Path socket) {
        CompletableFuture<QmpClient> f = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().daemon().name("connect-early").unstarted(() -> {
            try {
                f.complete(QmpClient.connect(new QmpEndpoint.Unix(socket), options(Duration.ofSeconds(30))));
            } catch (Throwable e) {
                // an Error too (a class missing from a broken install): the verb's connect waits on this future
                f.completeExceptionally(e);
            }
        });
        early.set(new Early(socket, f));
        t.start();
        return t;
    }

    /** Closes an early connection no verb took (a usage error, a verb for another socket). */
    static void discardEarly() {
        Early e = early.getAndSet(null);
        if (e != null) {
            e.client().thenAccept(QmpClient::close);
        }
    }

    private static QmpClient.Options options(Duration timeout) {
        return QmpClient.Options.defaults()
                .withConnectTimeout(Duration.ofSeconds(5))
                .withDefaultTimeout(timeout)
                .withName("qsupd")
                .withoutFdPassing() // qsupd takes no fds: the JDK's channel, no junixsocket native library
                .forExit(); // and the JVM's exit need not wait for a reader inside native code
    }

    /** {@code --socket}, then {@code QSUP_SOCKET}, then the default. */
    static Path resolveSocket(Path option, Map<String, String> env) {
        if (option != null) {
            return option;
        }
        String fromEnv = env.get("QSUP_SOCKET");
        if (fromEnv != null && !fromEnv.isBlank()) {
            return Path.of(fromEnv);
        }
        return DEFAULT_SOCKET;
    }

    static DaemonClient connect(Path socket, Duration timeout) {
        Early ahead = early.get();
        if (ahead != null && ahead.socket().equals(socket) && early.compareAndSet(ahead, null)) {
            try {
                QmpClient c = ahead.client().join();
                if (c.isConnected()) {
                    return new DaemonClient(c, socket, timeout);
                }
                c.close();
            } catch (CompletionException | java.util.concurrent.CancellationException failed) {
                // connect again, here, so that the error is said as always
            }
        }
        try {
            return new DaemonClient(QmpClient.connect(new QmpEndpoint.Unix(socket), options(timeout)), socket,
                    timeout);
        } catch (QmpErrorException e) {
            // qsupd refused the session (access denied, too many connections): its own words say why and what to do
            throw new CliException(ExitCodes.UNREACHABLE, "qsupd at " + socket + " refused the connection: "
                    + e.desc());
        } catch (QmpConnectException e) {
            String denied = SocketAccess.deniedMessage(socket);
            if (denied != null) {
                throw new CliException(ExitCodes.UNREACHABLE, denied);
            }
            throw new CliException(ExitCodes.UNREACHABLE, "cannot reach qsupd at " + socket + ": " + e.getMessage()
                    + "\nIs the daemon running? Start it with 'systemctl start qsupd' or 'qsupd --config FILE',"
                    + " or point qsup at its socket with --socket PATH or QSUP_SOCKET.");
        } catch (QmpException e) {
            throw new CliException(ExitCodes.UNREACHABLE, "qsupd at " + socket + " did not answer: " + e.getMessage());
        }
    }

    Path socket() {
        return socket;
    }

    JsonNode call(String command) {
        return call(command, JsonNodeFactory.instance.objectNode(), null);
    }

    JsonNode call(String command, ObjectNode args) {
        return call(command, args, null);
    }

    /** Runs one control command; a QMP error becomes a {@link CliException} with the matching exit code. */
    JsonNode call(String command, ObjectNode args, Duration timeout) {
        try {
            return client.execute(command, args, timeout == null ? this.timeout : timeout);
        } catch (QmpErrorException e) {
            int code = "VmNotFound".equals(e.errorClass()) ? ExitCodes.NOT_FOUND : ExitCodes.ERROR;
            throw new CliException(code, e.desc());
        } catch (QmpTimeoutException e) {
            throw new CliException(ExitCodes.ERROR, "qsupd did not answer " + command + " in time: " + e.getMessage());
        } catch (QmpDisconnectedException e) {
            throw new CliException(ExitCodes.UNREACHABLE, "qsupd closed the connection: " + e.getMessage());
        } catch (QmpException e) {
            throw new CliException(ExitCodes.ERROR, command + " failed: " + e.getMessage());
        }
    }

    AutoCloseable onEvent(Consumer<QmpEvent> listener) {
        return client.addEventListener(listener);
    }

    void onDisconnect(Consumer<QmpException> listener) {
        client.onDisconnect(listener);
    }

    boolean isConnected() {
        return client.isConnected();
    }

    @Override
    public void close() {
        client.close();
    }
}
