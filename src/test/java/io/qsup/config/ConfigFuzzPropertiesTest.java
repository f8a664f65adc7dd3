package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.FileCheck;
import io.qsup.qemu.HostFacts;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Random documents and random strings in every string field: the loader either accepts a definition or reports a
 * {@link ConfigException}, never anything else; the builder never fails on an accepted definition; and no value
 * can split an argument, add an option-string key or a JSON property, or smuggle in a newline.
 */
class ConfigFuzzPropertiesTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final YAMLMapper YAML = new YAMLMapper();
    private static final DaemonSettings SETTINGS = new DaemonSettings(Path.of("/etc/qsup/vms"),
            Path.of("/run/qsup/qsupd.sock"), "qsup", Path.of("/run/qsup"), Path.of("/var/lib/qsup"),
            Path.of("/var/log/qsup"), "qemu-system-x86_64", Accel.KVM, 2, "info", null);
    private static final HostFacts HOST = HostFacts.fixed(true, true, FileCheck.allPresent());
    private static Path dir;

    /** Keys every option string may have; the empty key is the bare first value. */
    private static final Map<String, Set<String>> OPTION_KEYS = Map.ofEntries(
            Map.entry("-name", Set.of("guest")),
            Map.entry("-msg", Set.of("timestamp")),
            Map.entry("-sandbox", Set.of("", "obsolete", "elevateprivileges", "spawn", "resourcecontrol")),
            Map.entry("-machine", Set.of("", "pflash0", "pflash1")),
            Map.entry("-accel", Set.of("")),
            Map.entry("-cpu", Set.of("")),
            Map.entry("-m", Set.of("")),
            Map.entry("-smp", Set.of("", "sockets", "cores", "threads")),
            Map.entry("-chardev", Set.of("", "id", "path", "server", "wait", "logfile", "logappend")),
            Map.entry("-mon", Set.of("chardev", "mode")),
            Map.entry("-display", Set.of("")),
            Map.entry("-vnc", Set.of("", "to")),
            Map.entry("-action", Set.of("watchdog")));
    private static final Map<String, Set<String>> JSON_KEYS = Map.of(
            "-device", Set.of("driver", "id", "chardev", "drive", "serial", "bootindex", "write-cache", "bus", "unit",
                    "channel", "scsi-id", "lun", "netdev", "mac", "rng", "name"),
            "-blockdev", Set.of("driver", "filename", "node-name", "aio", "cache", "discard", "read-only", "file"),
            "-netdev", Set.of("type", "id", "hostfwd", "ifname", "script", "downscript", "br", "helper"),
            "-object", Set.of("qom-type", "id", "filename"));
    private static final Set<String> PLAIN = Set.of("-pidfile", "-kernel", "-initrd", "-append");
    private static final Set<String> FLAGS = Set.of("-nodefaults", "-no-user-config", "-daemonize");

    @BeforeContainer
    static void makeDir() throws IOException {
        dir = Files.createTempDirectory("qsup-fuzz");
    }

    @AfterContainer
    static void removeDir() throws IOException {
        try (var s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Loads {@code text} as a definition file; null when the loader reported errors. */
    private static VmDefinition load(String text) {
        Path f = dir.resolve("fuzz.yaml");
        try {
            Files.writeString(f, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            VmDefinition vm = ConfigLoader.loadFile(f, SETTINGS, HOST);
            ConfigLoader.warnings(f, SETTINGS, HOST);
            return vm;
        } catch (ConfigException e) {
            assertThat(e.errors()).isNotEmpty();
            for (ConfigError err : e.errors()) {
                assertThat(err.format()).doesNotContain("\n").startsWith(f.toString());
            }
            return null;
        }
    }

    @Property(tries = 400)
    void randomTextIsAcceptedOrReportedNeverCrashes(@ForAll("yamlishText") String text) {
        VmDefinition vm = load(text);
        Statistics.label("text").collect(vm != null ? "accepted" : "reported");
        if (vm != null) {
            checkArgv(ArgvBuilder.build(vm, SETTINGS, HOST), vm);
        }
    }

    @Property(tries = 400)
    void randomDocumentsAreAcceptedOrReportedNeverCrash(@ForAll("documents") Map<String, Object> doc) throws Exception {
        VmDefinition vm = load(YAML.writeValueAsString(doc));
        Statistics.label("documents").collect(vm != null ? "accepted" : "reported");
        if (vm != null) {
            checkArgv(ArgvBuilder.build(vm, SETTINGS, HOST), vm);
            checkArgv(ArgvBuilder.buildForeground(vm, SETTINGS, HOST), vm);
        }
    }

    @Property(tries = 600)
    void noStringFieldCanSplitOrInjectIntoTheArgv(@ForAll("fields") String field, @ForAll("nasty") String value)
            throws Exception {
        String text = FIELDS.get(field).apply(JSON.writeValueAsString(value));
        VmDefinition vm = load(text);
        Statistics.label("fields").collect(field, vm != null ? "accepted" : "reported");
        if (vm == null) {
            return;
        }
        List<String> argv = ArgvBuilder.build(vm, SETTINGS, HOST);
        checkArgv(argv, vm);
        // The same definition with a harmless value has the same shape: same options in the same order.
        VmDefinition plain = load(FIELDS.get(field).apply(JSON.writeValueAsString("plain")));
        if (plain != null && !field.equals("extra-args")) {
            assertThat(shape(argv)).isEqualTo(shape(ArgvBuilder.build(plain, SETTINGS, HOST)));
        }
    }

    /** Every generated argument is well-formed and carries the definition's values intact. */
    private static void checkArgv(List<String> argv, VmDefinition vm) {
        int generated = argv.size() - vm.extraArgs().size();
        assertThat(argv.subList(generated, argv.size())).isEqualTo(vm.extraArgs());
        Set<String> filenames = new HashSet<>();
        Set<String> serials = new HashSet<>();
        for (int i = 1; i < generated; i++) {
            String a = argv.get(i);
            assertThat(a).doesNotContain("\n", "\r", "\0");
            if (FLAGS.contains(a)) {
                continue;
            }
            assertThat(i + 1).as("option %s has a value", a).isLessThan(generated);
            String v = argv.get(++i);
            if (OPTION_KEYS.containsKey(a)) {
                var parts = QemuOptsParser.parse(v, true);
                Set<String> keys = new HashSet<>();
                for (var p : parts) {
                    assertThat(OPTION_KEYS.get(a)).as("key of %s %s", a, v).contains(p.getKey());
                    assertThat(keys.add(p.getKey())).as("key %s once in %s", p.getKey(), v).isTrue();
                }
                if (a.equals("-name")) {
                    assertThat(parts.get(0).getValue()).isEqualTo(vm.name());
                }
            } else if (JSON_KEYS.containsKey(a)) {
                JsonNode n = readJson(v);
                n.fieldNames().forEachRemaining(k -> assertThat(JSON_KEYS.get(a)).as("property of %s %s", a, v).contains(k));
                if (n.has("filename")) {
                    filenames.add(n.get("filename").asText());
                }
                if (n.has("serial")) {
                    serials.add(n.get("serial").asText());
                }
            } else if (PLAIN.contains(a)) {
                switch (a) {
                    case "-kernel" -> assertThat(v).isEqualTo(vm.kernel().toString());
                    case "-initrd" -> assertThat(v).isEqualTo(vm.initrd().toString());
                    case "-append" -> assertThat(v).isEqualTo(vm.append());
                    default -> assertThat(v).isEqualTo(SETTINGS.pathsFor(vm.name()).pidFile().toString());
                }
            } else {
                throw new AssertionError("unexpected argument " + a + " in " + argv);
            }
        }
        for (Disk d : vm.disks()) {
            if (d.file() != null) {
                assertThat(filenames).contains(d.file().toString());
            }
            if (d.serial() != null) {
                assertThat(serials).contains(d.serial());
            }
        }
    }

    private static List<String> shape(List<String> argv) {
        List<String> s = new ArrayList<>();
        for (String a : argv) {
            if (OPTION_KEYS.containsKey(a) || JSON_KEYS.containsKey(a) || PLAIN.contains(a) || FLAGS.contains(a)) {
                s.add(a);
            }
        }
        return s;
    }

    private static JsonNode readJson(String v) {
        try {
            JsonNode n = JSON.readTree(v);
            assertThat(n.isObject()).as("JSON object: %s", v).isTrue();
            return n;
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + v, e);
        }
    }

    /** Documents that put a value (given as a JSON string, which YAML reads as a double-quoted scalar) in one field. */
    static final Map<String, Function<String, String>> FIELDS = new LinkedHashMap<>();

    static {
        FIELDS.put("name", v -> "name: " + v + "\n");
        FIELDS.put("description", v -> "description: " + v + "\n");
        FIELDS.put("memory", v -> "memory: " + v + "\n");
        FIELDS.put("cpu", v -> "cpu: " + v + "\n");
        FIELDS.put("kernel", v -> "kernel: " + v + "\ninitrd: " + v + "\nappend: " + v + "\n");
        FIELDS.put("uefi", v -> "firmware: uefi\nuefi-code: " + v + "\nuefi-vars-template: " + v + "\n");
        FIELDS.put("disk-file", v -> "disks:\n  - file: " + v + "\n  - media: cdrom\n    interface: scsi\n    file: " + v + "\n");
        FIELDS.put("disk-serial", v -> "disks:\n  - file: /d.qcow2\n    serial: " + v + "\n    interface: nvme\n");
        FIELDS.put("disk-cache", v -> "disks:\n  - file: /d.qcow2\n    cache: " + v + "\n    aio: " + v + "\n");
        FIELDS.put("mac", v -> "networks:\n  - mac: " + v + "\n");
        FIELDS.put("ifname", v -> "networks:\n  - type: tap\n    ifname: " + v + "\n");
        FIELDS.put("bridge", v -> "networks:\n  - type: bridge\n    bridge: " + v + "\n    helper: " + v + "\n");
        FIELDS.put("forward", v -> "networks:\n  - forwards:\n      - host-address: " + v + "\n        host-port: 2222\n        guest-port: 22\n");
        FIELDS.put("listen", v -> "display:\n  type: vnc\n  listen: " + v + "\n");
        FIELDS.put("watchdog", v -> "devices:\n  watchdog:\n    model: " + v + "\n    action: " + v + "\n");
        FIELDS.put("depends-on", v -> "depends-on: [" + v + "]\n");
        FIELDS.put("durations", v -> "restart-delay: " + v + "\nstop-timeout: " + v + "\n");
        FIELDS.put("extra-args", v -> "extra-args: [" + v + ", " + v + "]\n");
    }

    @Provide
    Arbitrary<String> fields() {
        return Arbitraries.of(List.copyOf(FIELDS.keySet()));
    }

    @Provide
    Arbitrary<String> nasty() {
        Arbitrary<String> tricky = Arbitraries.strings()
                .withChars(",=\n\r\t \"'\\:/.-_{}[]#&*!|>%@`?;$ü€\u0000\u202e")
                .withCharRange('a', 'f')
                .withCharRange('0', '9')
                .ofMaxLength(40);
        Arbitrary<String> pathLike = tricky.map(s -> "/images/" + s);
        Arbitrary<String> injections = Arbitraries.of(
                "a,b", "x,id=evil", "/d.qcow2,format=raw", "on,spawn=allow", "x\n-device\nfoo", "52:54:00:00:00:01,x",
                "5s,", "host,+vmx", "br0 -netdev", "127.0.0.1,to=1", "\"}", "x\",\"driver\":\"evil", "a=b", "");
        return Arbitraries.oneOf(tricky, pathLike, injections, Arbitraries.strings().ofMaxLength(20));
    }

    @Provide
    Arbitrary<String> yamlishText() {
        Arbitrary<String> words = Arbitraries.oneOf(
                Arbitraries.of(VmParser.KEYS),
                Arbitraries.of(":", ": ", "- ", "\n", "\n  ", "[", "]", "{", "}", ",", "&a", "*a", "!!binary", "? ",
                        "|", ">", "'", "\"", "#", "---\n", "~", "true", "512M", "1s", "/x", "\t", "%YAML 1.1\n"),
                Arbitraries.strings().ofMaxLength(6));
        return words.list().ofMaxSize(40).map(l -> String.join("", l));
    }

    @Provide
    Arbitrary<Map<String, Object>> documents() {
        Arbitrary<Object> scalar = Arbitraries.oneOf(
                Arbitraries.strings().ofMaxLength(12).map(s -> (Object) s),
                Arbitraries.of("512M", "2G", "1s", "5m", "virtio", "cdrom", "user", "tap", "bridge", "vnc", "none",
                        "uefi", "auto", "tcg", "kvm", "qcow2", "raw", "/a,b c/ü.qcow2", "52:54:00:12:34:56", "0.0.0.0",
                        "on-failure", "always", "no", "restart", "i6300esb", "ib700", "scsi", "nvme", "ide").map(s -> (Object) s),
                Arbitraries.integers().between(-5, 70000).map(i -> (Object) i),
                Arbitraries.of(true, false).map(b -> (Object) b),
                Arbitraries.just(null));
        Arbitrary<String> anyKey = Arbitraries.oneOf(
                Arbitraries.of(VmParser.KEYS),
                Arbitraries.of("file", "format", "interface", "media", "cache", "aio", "discard", "readonly", "serial",
                        "boot-order", "type", "model", "mac", "ifname", "bridge", "helper", "forwards", "host-port",
                        "guest-port", "protocol", "host-address", "listen", "port", "pvpanic", "watchdog",
                        "virtio-rng", "action", "count", "sockets", "cores", "threads"),
                Arbitraries.strings().ofMaxLength(8));
        Arbitrary<Object> level2 = Arbitraries.oneOf(scalar,
                Arbitraries.maps(anyKey, scalar).ofMaxSize(4).map(m -> (Object) m),
                scalar.list().ofMaxSize(3).map(l -> (Object) l));
        Arbitrary<Object> level1 = Arbitraries.oneOf(level2,
                Arbitraries.maps(anyKey, level2).ofMaxSize(5).map(m -> (Object) m),
                Arbitraries.maps(anyKey, level2).ofMaxSize(5).list().ofMaxSize(3).map(l -> (Object) l));
        return Combinators.combine(Arbitraries.maps(Arbitraries.of(VmParser.KEYS), level1).ofMaxSize(8),
                Arbitraries.maps(anyKey, scalar).ofMaxSize(2)).as((a, b) -> {
                    Map<String, Object> m = new LinkedHashMap<>(b);
                    m.putAll(a);
                    return m;
                });
    }
}
