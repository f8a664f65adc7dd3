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

    private DaemonClient(QmpClient client, Path socket) {
        this.client = client;
        this.socket = socket;
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
        try {
            QmpClient.Options opts = QmpClient.Options.defaults()
                    .withConnectTimeout(Duration.ofSeconds(5))
                    .withDefaultTimeout(timeout)
                    .withName("qsupd")
                    .withoutFdPassing() // qsupd takes no fds: the JDK's channel, no junixsocket native library
                    .forExit(); // and the JVM's exit need not wait for a reader inside native code
            return new DaemonClient(QmpClient.connect(new QmpEndpoint.Unix(socket), opts), socket);
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
            return timeout == null ? client.execute(command, args) : client.execute(command, args, timeout);
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
