package io.qsup.qmp.schema;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.GenerationMode;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * The checker against QEMU itself, on a throwaway QEMU's real schema: a command whose arguments are all optional
 * passes with none, and a wrongly typed argument is refused by the checker exactly where QEMU refuses it too.
 *
 * <p>What is sent is a command whose required arguments all have valid values except the one wrong one, so QEMU's
 * argument parsing fails before the command runs. Commands that could end QEMU or touch the host if they ran anyway
 * are never sent; should a command end QEMU regardless, a fresh one is started and the sample fails.
 */
class QmpSchemaProperties {
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    /** Never sent: they end or reset QEMU, run other monitors' commands, or write files and sockets of the host. */
    private static final Set<String> NOT_SENT = Set.of("quit", "system_powerdown", "system_reset", "system_wakeup",
            "x-exit-preconfig", "human-monitor-command", "migrate", "migrate-incoming", "migrate-recover",
            "device_add", "netdev_add", "object-add", "chardev-add", "chardev-change", "dump-guest-memory", "screendump",
            "memsave", "pmemsave", "blockdev-create", "drive-mirror", "drive-backup", "blockdev-mirror",
            "blockdev-backup", "snapshot-save", "snapshot-load", "snapshot-delete", "getfd", "add-fd",
            "xen-save-devices-state", "xen-load-devices-state", "qmp_capabilities", "transaction",
            "blockdev-snapshot-sync", "nbd-server-start", "block-export-add", "display-reload", "dump-skeys");

    private static RealQemuSchema qemu;

    @BeforeContainer
    static void start() throws Exception {
        qemu = new RealQemuSchema();
        qemu.ensureRunning();
    }

    @AfterContainer
    static void stop() {
        if (qemu != null) {
            qemu.close();
        }
    }

    // ---- all-optional commands accept no arguments ----

    @Provide
    Arbitrary<String> commandsWithOnlyOptionalArguments() throws QmpException {
        QmpSchema s = qemu.schema();
        List<String> names = s.commands().values().stream()
                .filter(c -> s.arguments(c).members().stream().allMatch(SchemaType.Member::optional))
                .map(SchemaCommand::name).toList();
        assertThat(names).hasSizeGreaterThan(50);
        return Arbitraries.of(names);
    }

    @Property(generation = GenerationMode.EXHAUSTIVE, tries = 1000)
    void aCommandWhoseArgumentsAreAllOptionalPassesWithNone(@ForAll("commandsWithOnlyOptionalArguments") String c)
            throws QmpException {
        ObjectNode m = JSON.objectNode().put("execute", c);
        assertThat(new ArgumentChecker(qemu.schema()).check(m)).as(c).isEmpty();
        m.putObject("arguments");
        assertThat(new ArgumentChecker(qemu.schema()).check(m)).as(c).isEmpty();
    }

    // ---- wrong types: refused by the checker and by QEMU ----

    /** A command, one of its own (not a variant's) arguments, and a wrong value for it. */
    record Sample(String command, String member, JsonNode wrong) {
        @Override
        public String toString() {
            return command + " " + member + "=" + wrong;
        }
    }

    @Provide
    Arbitrary<Sample> wronglyTypedArguments() throws QmpException {
        QmpSchema s = qemu.schema();
        List<String[]> targets = new ArrayList<>();
        for (SchemaCommand c : s.commands().values()) {
            if (NOT_SENT.contains(c.name()) || s.takesMoreArguments(c)) {
                continue;
            }
            for (SchemaType.Member m : s.arguments(c).members()) {
                if (!wrongValues(s, m.type()).isEmpty()) {
                    targets.add(new String[] {c.name(), m.name(), m.type()});
                }
            }
        }
        assertThat(targets).hasSizeGreaterThan(100);
        return Arbitraries.of(targets).flatMap(t -> Arbitraries.of(wrongValues(s, t[2]))
                .map(v -> new Sample(t[0], t[1], v)));
    }

    @Property(tries = 250)
    void aWronglyTypedArgumentIsRefusedByTheCheckerAndByQemu(@ForAll("wronglyTypedArguments") Sample sample)
            throws QmpException {
        QmpSchema s = qemu.schema();
        SchemaCommand command = s.command(sample.command());
        ObjectNode valid = (ObjectNode) validValue(s, command.argType(), 0);
        ArgumentChecker checker = new ArgumentChecker(s);
        // the rest of the command is right: the checker's complaint is about the wrong value alone
        SchemaType.Member member = s.arguments(command).member(sample.member());
        ObjectNode right = valid.deepCopy();
        if (!sample.member().equals(s.arguments(command).tag())) {
            right.set(sample.member(), validValue(s, member.type(), 0));
        }
        assertThat(checker.check(message(sample.command(), right))).as("valid form of " + sample).isEmpty();

        ObjectNode wrong = valid.deepCopy();
        wrong.set(sample.member(), sample.wrong());
        List<Problem> problems = checker.check(message(sample.command(), wrong));
        assertThat(problems).as(sample.toString()).isNotEmpty()
                .allSatisfy(p -> assertThat(p.path()).startsWith(sample.member()));

        int startsBefore = qemu.starts();
        String qemuAnswer;
        try {
            JsonNode ret = qemu.client().sendRaw(message(sample.command(), wrong), Duration.ofSeconds(10));
            qemuAnswer = "accepted, returning " + ret;
        } catch (QmpErrorException e) {
            qemuAnswer = e.errorClass() + ": " + e.desc();
        } catch (QmpException e) {
            qemuAnswer = "lost: " + e.getMessage();
        }
        qemu.ensureRunning();
        assertThat(qemu.starts()).as("QEMU survived " + sample).isEqualTo(startsBefore);
        assertThat(qemuAnswer).as("QEMU's answer to " + sample + " (the checker said " + problems + ")")
                .startsWith("GenericError: ").contains("'" + sample.member() + "'");
    }

    private static ObjectNode message(String command, ObjectNode args) {
        ObjectNode m = JSON.objectNode().put("execute", command);
        m.set("arguments", args);
        return m;
    }

    /** The JSON kinds QEMU takes for a type. */
    private static Set<String> kinds(QmpSchema s, String typeName) {
        return switch (s.type(typeName)) {
            case SchemaType.Builtin b -> switch (b.jsonType()) {
                case "string" -> Set.of("string");
                case "int" -> Set.of("int");
                case "number" -> Set.of("int", "double");
                case "boolean" -> Set.of("bool");
                case "null" -> Set.of("null");
                default -> Set.of("string", "int", "double", "bool", "null", "object", "array");
            };
            case SchemaType.EnumType e -> Set.of("string");
            case SchemaType.ArrayType a -> Set.of("array");
            case SchemaType.ObjectType o -> Set.of("object");
            case SchemaType.AlternateType alt -> {
                Set<String> all = new java.util.HashSet<>();
                alt.types().forEach(t -> all.addAll(kinds(s, t)));
                yield all;
            }
        };
    }

    /** Values of the kinds the type does not take; for an enum also a string outside it. */
    private static List<JsonNode> wrongValues(QmpSchema s, String typeName) {
        Set<String> ok = kinds(s, typeName);
        List<JsonNode> out = new ArrayList<>();
        if (!ok.contains("string")) {
            out.add(JSON.textNode("qsup-wrong"));
        }
        if (!ok.contains("int")) {
            out.add(JSON.numberNode(7));
        }
        if (!ok.contains("double")) {
            out.add(JSON.numberNode(1.5));
        }
        if (!ok.contains("bool")) {
            out.add(JSON.booleanNode(true));
        }
        if (!ok.contains("null")) {
            out.add(JSON.nullNode());
        }
        if (!ok.contains("object")) {
            out.add(JSON.objectNode());
        }
        if (!ok.contains("array")) {
            out.add(JSON.arrayNode().add(1));
        }
        if (s.type(typeName) instanceof SchemaType.EnumType) {
            out.add(JSON.textNode("qsup-no-such-value"));
        }
        return out;
    }

    /** A value the checker and QEMU's parsing accept: required members only, first enum values and variants. */
    private static JsonNode validValue(QmpSchema s, String typeName, int depth) {
        return switch (s.type(typeName)) {
            case SchemaType.Builtin b -> switch (b.jsonType()) {
                case "string" -> JSON.textNode("qsup-prop");
                case "int", "number" -> JSON.numberNode(0);
                case "boolean" -> JSON.booleanNode(false);
                case "null" -> JSON.nullNode();
                default -> JSON.textNode("qsup-prop");
            };
            case SchemaType.EnumType e -> JSON.textNode(e.values().get(0));
            case SchemaType.ArrayType a -> JSON.arrayNode();
            // a scalar branch where there is one: an object branch may be the type itself (BlockdevRef)
            case SchemaType.AlternateType alt -> validValue(s, alt.types().stream()
                    .filter(t -> !(s.type(t) instanceof SchemaType.ObjectType)).findFirst()
                    .orElse(alt.types().get(0)), depth + 1);
            case SchemaType.ObjectType o -> {
                ObjectNode obj = JSON.objectNode();
                fill(s, o, obj, depth);
                yield obj;
            }
        };
    }

    private static void fill(QmpSchema s, SchemaType.ObjectType o, ObjectNode obj, int depth) {
        for (SchemaType.Member m : o.members()) {
            if (m.optional()) {
                continue;
            }
            if (m.name().equals(o.tag())) {
                obj.put(m.name(), o.variants().keySet().iterator().next());
            } else {
                obj.set(m.name(), validValue(s, m.type(), depth + 1));
            }
        }
        SchemaType.ObjectType variant = s.variant(o, obj);
        if (variant != null) {
            fill(s, variant, obj, depth + 1);
        }
    }
}
