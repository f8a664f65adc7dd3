package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.EventWaiter;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpException;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * Where {@code qsup qmp} sends its commands: straight to a QEMU monitor, or to a VM through qsupd's {@code vm-qmp}.
 * Both deliver QEMU's events in QEMU's own form, so the runner and its output are the same for both.
 */
interface QmpTarget {
    /** Sends one QMP message ({@code execute} and {@code arguments}) and returns its {@code return} value. */
    JsonNode send(ObjectNode message, Duration timeout) throws QmpException;

    /** Calls the consumer with each QEMU event, as QEMU sent it, until the returned handle is closed. */
    AutoCloseable onEvent(Consumer<JsonNode> consumer);

    /** Arms a wait for a QEMU event; its {@code await} returns the event as QEMU sent it. */
    Waiter expect(String eventName);

    QmpClient client();

    /** Names the target for the completion's memory of its last schema: the socket, or the daemon and the VM. */
    String id();

    /** QEMU's version object as in its greeting: {@code {"qemu": {"major": ..}, "package": ..}}. */
    JsonNode versionInfo(Duration timeout) throws QmpException;

    /** QEMU's {@code query-qmp-schema}. */
    JsonNode fetchSchema(Duration timeout) throws QmpException;

    /** A pending wait for one event. */
    interface Waiter extends AutoCloseable {
        JsonNode await(Duration timeout) throws QmpException;

        @Override
        void close();
    }

    /** A QEMU monitor socket. */
    static QmpTarget direct(QmpClient client) {
        return new QmpTarget() {
            @Override
            public JsonNode send(ObjectNode message, Duration timeout) throws QmpException {
                return client.sendRaw(message, timeout);
            }

            @Override
            public AutoCloseable onEvent(Consumer<JsonNode> consumer) {
                return client.addEventListener(e -> consumer.accept(e.raw()));
            }

            @Override
            public Waiter expect(String eventName) {
                EventWaiter w = client.expectEvent(eventName, null);
                return new Waiter() {
                    @Override
                    public JsonNode await(Duration timeout) throws QmpException {
                        return w.await(timeout).raw();
                    }

                    @Override
                    public void close() {
                        w.close();
                    }
                };
            }

            @Override
            public QmpClient client() {
                return client;
            }

            @Override
            public String id() {
                return "socket " + client.endpoint();
            }

            @Override
            public JsonNode versionInfo(Duration timeout) {
                return client.greeting().raw().path("QMP").path("version");
            }

            @Override
            public JsonNode fetchSchema(Duration timeout) throws QmpException {
                return client.execute("query-qmp-schema", null, timeout);
            }
        };
    }

    /**
     * A VM supervised by qsupd: commands go through {@code vm-qmp}, QEMU's events arrive wrapped in
     * {@code VM_QMP_EVENT} and are unwrapped here. The caller subscribes the session first.
     */
    static QmpTarget viaDaemon(QmpClient daemon, String vm) {
        return new QmpTarget() {
            @Override
            public JsonNode send(ObjectNode message, Duration timeout) throws QmpException {
                ObjectNode args = JsonNodeFactory.instance.objectNode();
                args.put("name", vm);
                args.set("command", message.path("execute"));
                if (message.has("arguments")) {
                    args.set("arguments", message.get("arguments"));
                }
                args.put("timeout", timeout.toMillis() / 1000.0);
                // The daemon answers after QEMU does, or after the deadline it was given.
                return daemon.execute("vm-qmp", args, timeout.plusSeconds(5));
            }

            @Override
            public AutoCloseable onEvent(Consumer<JsonNode> consumer) {
                return daemon.addEventListener(e -> {
                    if (e.name().equals("VM_QMP_EVENT") && vm.equals(e.data().path("vm").asText())) {
                        consumer.accept(unwrap(e.raw()));
                    }
                });
            }

            @Override
            public Waiter expect(String eventName) {
                EventWaiter w = daemon.expectEvent("VM_QMP_EVENT", e -> vm.equals(e.data().path("vm").asText())
                        && eventName.equals(e.data().path("event").asText()));
                return new Waiter() {
                    @Override
                    public JsonNode await(Duration timeout) throws QmpException {
                        return unwrap(w.await(timeout).raw());
                    }

                    @Override
                    public void close() {
                        w.close();
                    }
                };
            }

            @Override
            public QmpClient client() {
                return daemon;
            }

            @Override
            public String id() {
                return "vm " + vm + " at " + daemon.endpoint();
            }

            @Override
            public JsonNode versionInfo(Duration timeout) throws QmpException {
                return send(command("query-version"), timeout);
            }

            /** qsupd keeps the schema per QEMU version; one that predates vm-qmp-schema passes the query through. */
            @Override
            public JsonNode fetchSchema(Duration timeout) throws QmpException {
                ObjectNode args = JsonNodeFactory.instance.objectNode().put("name", vm);
                try {
                    return daemon.execute("vm-qmp-schema", args, timeout.plusSeconds(5)).path("schema");
                } catch (io.qsup.qmp.QmpErrorException e) {
                    if (!"CommandNotFound".equals(e.errorClass())) {
                        throw e;
                    }
                    return send(command("query-qmp-schema"), timeout);
                }
            }
        };
    }

    private static ObjectNode command(String name) {
        return JsonNodeFactory.instance.objectNode().put("execute", name);
    }

    /** {@code {"event":"VM_QMP_EVENT","data":{"vm":..,"event":E,"data":D},"timestamp":T}} to QEMU's {@code {"event":E,...}}. */
    private static JsonNode unwrap(JsonNode wrapped) {
        ObjectNode e = JsonNodeFactory.instance.objectNode();
        e.set("event", wrapped.path("data").path("event"));
        if (wrapped.path("data").has("data")) {
            e.set("data", wrapped.path("data").path("data"));
        }
        e.set("timestamp", wrapped.path("timestamp"));
        return e;
    }
}
