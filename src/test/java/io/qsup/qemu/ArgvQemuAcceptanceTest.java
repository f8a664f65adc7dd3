package io.qsup.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.config.Accel;
import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.Disk;
import io.qsup.config.DisplayType;
import io.qsup.config.MachineType;
import io.qsup.config.VmDefinition;
import io.qsup.config.VmPaths;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.testing.UnixSockets;
import io.qsup.qmp.QmpException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

/**
 * Starts real QEMU with every golden command line, in the foreground, paused ({@code -S}) and under TCG, with the
 * golden's host paths moved to a temp folder and its disk images created with {@code qemu-img}, then asks QEMU
 * over QMP whether it built what the definition asked for: machine, CPUs, memory, chardevs, block devices, PCI
 * devices and every device id.
 */
class ArgvQemuAcceptanceTest {
    /** Goldens this test cannot start on an ordinary build host, and why. */
    static final Map<String, String> NOT_STARTED = Map.of(
            "net-bridge", "the bridge helper needs a host bridge br0 allowed in /etc/qemu/bridge.conf and a setuid helper");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path OVMF_CODE = Path.of("/usr/share/OVMF/OVMF_CODE_4M.fd");
    private static final Path OVMF_VARS = Path.of("/usr/share/OVMF/OVMF_VARS_4M.fd");
    private static final Set<String> PCI_DRIVERS = Set.of("virtio-blk-pci", "virtio-net-pci", "e1000", "e1000e",
            "rtl8139", "nvme", "virtio-scsi-pci", "virtio-rng-pci", "i6300esb", "VGA");

    @Test
    void everyGoldenThatIsNotStartedExists() {
        for (String name : NOT_STARTED.keySet()) {
            assertThat(ArgvGoldenTest.DIR.resolve(name + ".yaml")).exists();
        }
    }

    /**
     * The daemonized command line with its sandbox really starts: {@code -daemonize} forks and calls setsid after
     * seccomp is installed, so a sandbox that denies spawn or privilege changes would kill QEMU here.
     */
    @Test
    void daemonizedArgvWithSandboxStartsAndWritesItsPidfile() throws Exception {
        requireTool("qemu-system-x86_64");
        Path tmp = Files.createTempDirectory(Path.of("/tmp"), "qsup-daemon");
        DaemonSettings s = new DaemonSettings(tmp.resolve("vms"), tmp.resolve("qsupd.sock"), "qsup", tmp.resolve("run"),
                tmp.resolve("state"), tmp.resolve("log"), "qemu-system-x86_64", Accel.TCG, 1, "info", null);
        HostFacts probed = HostFacts.probe(s.qemuBinary());
        assertThat(probed.sandboxSupported()).as("Debian's QEMU is built with seccomp").isTrue();
        HostFacts host = new HostFacts(probed.qemuBinary(), probed.qemuPath(), null, false, "TCG for the test",
                true, FileCheck.real());
        Path def = tmp.resolve("vms/daemon.yaml");
        Files.createDirectories(def.getParent());
        Files.writeString(def, "memory: 64M\ndevices:\n  virtio-rng: true\n");
        VmDefinition vm = ConfigLoader.loadFile(def, s, host);
        VmPaths paths = s.pathsFor(vm.name());
        Files.createDirectories(paths.dir());
        Files.createDirectories(paths.logDir());
        List<String> argv = ArgvBuilder.build(vm, s, host);
        assertThat(argv).contains("-daemonize", "-sandbox");
        long pid = -1;
        try {
            Process launcher = new ProcessBuilder(argv).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("launch.out").toFile()).start();
            assertThat(launcher.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(launcher.exitValue()).as("daemonize: %s", Files.readString(tmp.resolve("launch.out"))).isZero();
            pid = Long.parseLong(Files.readString(paths.pidFile()).trim());
            try (QmpClient qmp = QmpClient.connect(new QmpEndpoint.Unix(paths.qmpSocket()))) {
                assertThat(qmp.queryStatus().status()).isEqualTo("running");
                qmp.quit();
            }
            ProcessHandle h = ProcessHandle.of(pid).orElse(null);
            if (h != null) {
                h.onExit().get(20, TimeUnit.SECONDS);
            }
            pid = -1;
        } finally {
            if (pid > 0) {
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            }
            deleteTree(tmp);
        }
    }

    @TestFactory
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    Stream<DynamicTest> qemuAcceptsEveryGoldenArgv() {
        requireTool("qemu-system-x86_64");
        requireTool("qemu-img");
        return Goldens.list(ArgvGoldenTest.DIR, ".yaml").stream().map(yaml -> {
            String name = Goldens.stem(yaml, ".yaml");
            return DynamicTest.dynamicTest(name, () -> {
                if (NOT_STARTED.containsKey(name)) {
                    Assumptions.abort("not started: " + NOT_STARTED.get(name));
                }
                if (name.equals("net-tap") && !canCreateTap()) {
                    Assumptions.abort("not started: QEMU creates the tap devices itself, which needs root"
                            + " (CAP_NET_ADMIN) and a writable /dev/net/tun");
                }
                if (name.equals("display-vnc-ipv6") && !hasIpv6Loopback()) {
                    Assumptions.abort("not started: this host has no IPv6 loopback (::1) for VNC to bind");
                }
                run(yaml);
            });
        });
    }

    /** QEMU makes the tap devices (and they vanish with it) when it runs as root with /dev/net/tun. */
    private static boolean canCreateTap() {
        Path tun = Path.of("/dev/net/tun");
        try {
            long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
            return uid == 0 && Files.isReadable(tun) && Files.isWritable(tun);
        } catch (java.io.IOException e) {
            return false;
        }
    }

    private static void run(Path yaml) throws Exception {
        DaemonSettings settings = Goldens.settings(yaml);
        VmDefinition vm = ConfigLoader.loadFile(yaml, settings, Goldens.host(yaml, FileCheck.allPresent()));
        List<String> golden = Goldens.read(ArgvGoldenTest.DIR.resolve(Goldens.stem(yaml, ".yaml") + ".args")).lines().toList();
        Path tmp = Files.createTempDirectory(Path.of("/tmp"), "qsup-argv");
        Process qemu = null;
        try {
            Map<String, String> moves = new LinkedHashMap<>();
            moves.put("/run/qsup", tmp + "/run");
            moves.put("/var/log/qsup", tmp + "/log");
            moves.put("/var/lib/qsup", tmp + "/state");
            for (Disk d : vm.disks()) {
                if (d.file() != null) {
                    Path to = moveFile(d.file(), tmp, moves);
                    Files.createDirectories(to.getParent());
                    exec("qemu-img", "create", "-q", "-f", d.format().name().toLowerCase(), to.toString(), "16M");
                }
            }
            if (vm.kernel() != null) {
                writeFakeKernel(moveFile(vm.kernel(), tmp, moves));
            }
            if (vm.initrd() != null) {
                Path to = moveFile(vm.initrd(), tmp, moves);
                Files.createDirectories(to.getParent());
                Files.write(to, new byte[4096]);
            }
            VmPaths real = settings.pathsFor(vm.name());
            VmPaths local = new DaemonSettings(settings.vmsDir(), settings.controlSocket(), settings.controlGroup(),
                    Path.of(tmp + "/run"), Path.of(tmp + "/state"), Path.of(tmp + "/log"), settings.qemuBinary(),
                    settings.accel(), 1, "info", null).pathsFor(vm.name());
            if (vm.firmware().isUefi()) {
                requireFile(OVMF_CODE, "ovmf");
                if (!Files.exists(vm.firmware().code())) {
                    Path to = moveFile(vm.firmware().code(), tmp, moves);
                    Files.createDirectories(to.getParent());
                    Files.copy(OVMF_CODE, to);
                }
                // What the supervisor does before the first launch: a private copy of the vars template.
                Path template = Files.exists(vm.firmware().varsTemplate()) ? vm.firmware().varsTemplate() : OVMF_VARS;
                Files.createDirectories(local.stateDir());
                Files.copy(template, local.efiVars());
            }
            Files.createDirectories(local.dir());
            Files.createDirectories(local.logDir());

            List<String> argv = localArgv(golden, moves);
            Path out = tmp.resolve("qemu.out");
            qemu = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            awaitSocket(qemu, local.qmpSocket(), out);
            try (QmpClient qmp = QmpClient.connect(new QmpEndpoint.Unix(local.qmpSocket()))) {
                check(vm, golden, qmp, local, real, moves);
                qmp.quit();
            }
            assertThat(qemu.waitFor(20, TimeUnit.SECONDS)).as("QEMU exits after quit").isTrue();
        } finally {
            if (qemu != null && qemu.isAlive()) {
                qemu.destroyForcibly();
                qemu.waitFor(10, TimeUnit.SECONDS);
            }
            deleteTree(tmp);
        }
    }

    private static void check(VmDefinition vm, List<String> golden, QmpClient qmp, VmPaths local, VmPaths real,
            Map<String, String> moves) throws IOException, QmpException {
        assertThat(qmp.execute("query-name").path("name").asText()).isEqualTo(vm.name());
        String machineType = qmp.execute("qom-get", args().put("path", "/machine").put("property", "type")).asText();
        assertThat(machineType).contains(vm.machine() == MachineType.Q35 ? "q35" : "i440fx");
        assertThat(qmp.execute("query-cpus-fast")).hasSize(vm.cpus().count());
        assertThat(qmp.execute("query-memory-size-summary").path("base-memory").asLong()).isEqualTo(vm.memoryBytes());

        Map<String, String> chardevs = new LinkedHashMap<>();
        for (JsonNode c : qmp.execute("query-chardev")) {
            chardevs.put(c.path("label").asText(), c.path("filename").asText());
        }
        assertThat(chardevs).containsKeys("qmp", "serial0");
        assertThat(chardevs.get("serial0")).contains(local.consoleSocket().toString());

        // Every device the command line names is in the device tree under its id.
        Set<String> peripherals = new HashSet<>();
        for (JsonNode child : qmp.execute("qom-list", args().put("path", "/machine/peripheral"))) {
            peripherals.add(child.path("name").asText());
        }
        Set<String> pci = new HashSet<>();
        for (JsonNode bus : qmp.execute("query-pci")) {
            collectPci(bus.path("devices"), pci);
        }
        for (int i = 0; i < golden.size() - 1; i++) {
            if (golden.get(i).equals("-device") && golden.get(i + 1).startsWith("{")) {
                JsonNode dev = JSON.readTree(golden.get(i + 1));
                if (!dev.has("id")) {
                    continue;
                }
                String id = dev.get("id").asText();
                assertThat(peripherals).as("device %s (%s)", id, dev.get("driver")).contains(id);
                if (PCI_DRIVERS.contains(dev.get("driver").asText())) {
                    assertThat(pci).as("PCI device %s", id).contains(id);
                }
            }
        }

        Map<String, JsonNode> blocks = new LinkedHashMap<>();
        for (JsonNode b : qmp.execute("query-block")) {
            blocks.put(b.path("qdev").asText(), b);
        }
        for (int i = 0; i < vm.disks().size(); i++) {
            Disk d = vm.disks().get(i);
            String id = "disk" + i;
            JsonNode b = blocks.entrySet().stream().filter(e -> e.getKey().equals(id)
                    || e.getKey().contains("/" + id + "/")).map(Map.Entry::getValue).findFirst().orElse(null);
            assertThat(b).as("block device %s in %s", id, blocks.keySet()).isNotNull();
            if (d.file() == null) {
                assertThat(b.has("inserted")).as("empty cdrom %s", id).isFalse();
                continue;
            }
            assertThat(b.path("inserted").path("file").asText()).isEqualTo(moves.get(d.file().toString()));
            assertThat(b.path("inserted").path("ro").asBoolean()).as("%s read-only", id).isEqualTo(d.readonly());
            assertThat(b.path("inserted").path("cache").path("direct").asBoolean()).isEqualTo(d.cache().direct());
            assertThat(b.path("inserted").path("cache").path("no-flush").asBoolean()).isEqualTo(d.cache().noFlush());
        }
        if (vm.display().type() == DisplayType.VNC) {
            JsonNode vnc = qmp.execute("query-vnc");
            assertThat(vnc.path("enabled").asBoolean()).isTrue();
            assertThat(vnc.path("host").asText()).isEqualTo(vm.display().listen());
            if (vm.display().port() != 0) {
                assertThat(vnc.path("service").asText()).isEqualTo(Integer.toString(vm.display().port()));
            }
        }
        if (vm.firmware().isUefi()) {
            assertThat(machineType).isNotEmpty();
            assertThat(blocks.values().stream().map(b -> b.path("inserted").path("file").asText()).toList())
                    .as("UEFI vars are the VM's private copy, never the template")
                    .contains(local.efiVars().toString());
        }
        assertThat(real.qmpSocket().toString()).startsWith("/run/qsup/");
    }

    private static ObjectNode args() {
        return JsonNodeFactory.instance.objectNode();
    }

    private static void collectPci(JsonNode devices, Set<String> ids) {
        for (JsonNode d : devices) {
            if (d.hasNonNull("qdev_id") && !d.get("qdev_id").asText().isEmpty()) {
                ids.add(d.get("qdev_id").asText());
            }
            JsonNode bridge = d.path("pci_bridge").path("devices");
            if (bridge.isArray()) {
                collectPci(bridge, ids);
            }
        }
    }

    /** The golden argv as a foreground, paused, TCG process with every host path moved under the temp folder. */
    static List<String> localArgv(List<String> golden, Map<String, String> moves) {
        List<String> keys = new ArrayList<>(moves.keySet());
        keys.sort(Comparator.comparingInt(String::length).reversed());
        Map<String, String> all = new LinkedHashMap<>();
        for (String k : keys) {
            all.put(k, moves.get(k));
            if (k.contains(",")) {
                all.put(k.replace(",", ",,"), moves.get(k).replace(",", ",,"));
            }
        }
        List<String> sorted = new ArrayList<>(all.keySet());
        sorted.sort(Comparator.comparingInt(String::length).reversed());
        Pattern p = Pattern.compile(sorted.stream().map(Pattern::quote).collect(Collectors.joining("|")));
        List<String> out = new ArrayList<>();
        for (int i = 0; i < golden.size(); i++) {
            String a = golden.get(i);
            if (a.equals("-daemonize")) {
                continue;
            }
            if (i > 0 && golden.get(i - 1).equals("-accel")) {
                a = "tcg";
            } else if (i > 0 && golden.get(i - 1).equals("-cpu") && a.equals("host")) {
                a = "max";
            }
            Matcher m = p.matcher(a);
            a = m.replaceAll(r -> Matcher.quoteReplacement(all.get(r.group())));
            out.add(a);
            if (i == 0) {
                out.add("-S");
            }
        }
        return out;
    }

    private static boolean hasIpv6Loopback() {
        try {
            return Files.readString(Path.of("/proc/net/if_inet6")).contains(" lo\n");
        } catch (IOException e) {
            return false;
        }
    }

    private static Path moveFile(Path file, Path tmp, Map<String, String> moves) {
        Path to = Path.of(tmp + "/files" + file);
        moves.put(file.toString(), to.toString());
        return to;
    }

    /** A file with just a valid bzImage header: QEMU loads it at machine init, and under -S it never runs. */
    private static void writeFakeKernel(Path to) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64 * 1024).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1f1, (byte) 4);                 // setup_sects
        b.putShort(0x1fe, (short) 0xAA55);      // boot_flag
        b.put(0x202, "HdrS".getBytes(StandardCharsets.US_ASCII)[0]);
        b.put(0x203, (byte) 'd').put(0x204, (byte) 'r').put(0x205, (byte) 'S');
        b.putShort(0x206, (short) 0x020f);      // boot protocol 2.15
        b.put(0x211, (byte) 0x01);              // loadflags: LOADED_HIGH
        b.putInt(0x22c, 0x37ffffff);            // initrd_addr_max
        b.putInt(0x238, 4096);                  // cmdline_size
        Files.createDirectories(to.getParent());
        Files.write(to, b.array());
    }

    private static void awaitSocket(Process qemu, Path socket, Path out) throws Exception {
        Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
        while (!UnixSockets.isListening(socket)) {
            if (!qemu.isAlive()) {
                fail("QEMU refused the command line (exit " + qemu.exitValue() + "):\n" + Files.readString(out));
            }
            if (Instant.now().isAfter(deadline)) {
                fail("QEMU did not listen on its QMP socket within 30 s:\n" + Files.readString(out));
            }
            Thread.sleep(50);
        }
    }

    private static void exec(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " failed: " + output);
        }
    }

    static void requireTool(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return;
            }
        }
        fail(tool + " not found on PATH; install it (scripts/setup installs qemu-system-x86 and qemu-utils)");
    }

    private static void requireFile(Path file, String pkg) {
        if (!Files.exists(file)) {
            fail(file + " not found; install the Debian package " + pkg + " (scripts/setup does)");
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
