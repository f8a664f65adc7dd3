package io.qsup.config;

import io.qsup.qemu.HostFacts;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Turns the YAML tree of one definition file into a {@link VmDefinition}: every key, type, unit, range, file and
 * host check of a single VM is here. Checks that need all VMs (unique names, depends-on) are in {@link ConfigLoader}.
 */
final class VmParser {
    /** Safe in a file name and in every QEMU option: cannot start with a dot, so never {@code ..}. */
    static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    static final String NAME_RULE = "use letters, digits, '.', '_' and '-', start with a letter or digit, at most 64 characters";
    private static final Pattern CPU_MODEL = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    private static final Pattern SERIAL = Pattern.compile("[A-Za-z0-9_.:-]{1,20}");
    private static final Pattern IFNAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,14}");
    private static final Pattern MAC = Pattern.compile("[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}");
    private static final Pattern IPV4 = Pattern.compile("((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)");
    private static final Pattern IPV6 = Pattern.compile("[0-9a-fA-F:]*:[0-9a-fA-F:.]*");

    static final Path DEFAULT_OVMF_CODE = Path.of("/usr/share/OVMF/OVMF_CODE_4M.fd");
    static final Path DEFAULT_OVMF_VARS = Path.of("/usr/share/OVMF/OVMF_VARS_4M.fd");
    static final String DEFAULT_BRIDGE_HELPER = "/usr/lib/qemu/qemu-bridge-helper";
    static final long MIN_MEMORY = 16L << 20;

    static final List<String> KEYS = List.of(
            "name", "description", "memory", "cpus", "machine", "cpu", "accel",
            "firmware", "uefi-code", "uefi-vars-template", "kernel", "initrd", "append",
            "disks", "networks", "display", "devices", "guest-agent",
            "autostart", "depends-on", "restart", "restart-delay", "restart-max-delay", "restart-steps",
            "start-limit-burst", "start-limit-interval", "stop-timeout", "hang-action", "guest-hang-action", "guest-hang-after", "ready-when", "ready-timeout", "apply-changes",
            "extra-args", "placement", "failover");
    private static final List<String> PLACEMENT_KEYS = List.of("hosts", "anti-affinity");
    private static final Pattern GROUP = Pattern.compile("[a-z0-9][a-z0-9_.-]{0,62}");
    private static final List<String> READY_KEYS = List.of("serial", "tcp");
    private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):(\\d{1,5})");
    private static final List<String> CPU_KEYS = List.of("count", "sockets", "cores", "threads");
    private static final List<String> DISK_KEYS = List.of(
            "file", "format", "interface", "media", "cache", "aio", "discard", "readonly", "serial", "boot-order", "shared");
    private static final List<String> NET_KEYS = List.of("type", "model", "mac", "ifname", "bridge", "helper", "forwards");
    private static final List<String> FORWARD_KEYS = List.of("protocol", "host-address", "host-port", "guest-port");
    private static final List<String> DISPLAY_KEYS = List.of("type", "listen", "port");
    private static final List<String> DEVICE_KEYS = List.of("pvpanic", "watchdog", "virtio-rng");
    private static final List<String> WATCHDOG_KEYS = List.of("model", "action");

    private final Path file;
    private final Path base;
    private final DaemonSettings settings;
    private final HostFacts host;
    private final Problems p;
    /** Where each key was written, for checks made after parsing (depends-on, duplicate names). */
    private final Map<String, YamlNode.Location> locations = new HashMap<>();

    /** A parsed definition, or null with the errors, plus the locations of its keys. */
    record Parsed(VmDefinition vm, String name, Problems problems, Map<String, YamlNode.Location> locations) {}

    private VmParser(Path file, DaemonSettings settings, HostFacts host) {
        this.file = file;
        this.base = file.getParent();
        this.settings = settings;
        this.host = host;
        this.p = new Problems(file);
    }

    static Parsed parse(Path file, String text, DaemonSettings settings, HostFacts host) {
        VmParser vp = new VmParser(file, settings, host);
        VmDefinition vm = null;
        String name = null;
        try {
            YamlNode root = YamlReader.parse(text);
            if (root == null) {
                vp.p.error(YamlNode.Location.FILE, "", "the file is empty; a definition needs at least memory or disks, see config/reference.yaml");
            } else if (!(root instanceof YamlNode.Mapping map)) {
                vp.p.error(root.location(), "", "expected a mapping of keys (name: ..., memory: ...), got " + root.describe());
            } else {
                name = vp.name(map);
                vm = vp.definition(map, name);
            }
        } catch (YamlReader.Failure f) {
            vp.p.error(f.location, "", f.getMessage());
        }
        return new Parsed(vp.p.hasErrors() ? null : vm, name, vp.p, vp.locations);
    }

    private String name(YamlNode.Mapping map) {
        for (YamlNode.Entry e : map.entries()) {
            if (e.key().equals("name") && !(e.value() instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.NULL)) {
                locations.put("name", e.value().location());
                return Values.matching(e, "name", p, NAME, NAME_RULE);
            }
        }
        String fileName = file.getFileName().toString();
        String stem = fileName.endsWith(".yaml") ? fileName.substring(0, fileName.length() - 5) : fileName;
        locations.put("name", YamlNode.Location.FILE);
        if (!NAME.matcher(stem).matches()) {
            p.error(YamlNode.Location.FILE, "name", "the file name '" + Values.printable(stem)
                    + "' is not a valid VM name (" + NAME_RULE + "); rename the file or set name:");
            return null;
        }
        return stem;
    }

    private VmDefinition definition(YamlNode.Mapping map, String name) {
        Fields f = new Fields(map, "", p, KEYS);
        YamlNode.Entry e;

        String description = null;
        if ((e = f.get("description")) != null) {
            description = Values.string(e.value(), "description", p, true);
        }
        long memory = VmDefinition.DEFAULT_MEMORY;
        if ((e = f.get("memory")) != null) {
            Long m = Values.size(e, "memory", p);
            if (m != null) {
                if (m < MIN_MEMORY) {
                    p.error(e.value().location(), "memory", "is " + m + " bytes; give at least 16M");
                } else if (m % (1L << 20) != 0) {
                    p.error(e.value().location(), "memory", "must be a whole number of MiB, such as 512M or 2G");
                } else if (m > (4L << 40)) {
                    p.error(e.value().location(), "memory", "is more than 4T; give a smaller size");
                } else {
                    memory = m;
                }
            }
        }
        CpuTopology cpus = CpuTopology.of(1);
        if ((e = f.get("cpus")) != null) {
            CpuTopology c = cpus(e);
            cpus = c != null ? c : cpus;
        }
        MachineType machine = MachineType.Q35;
        if ((e = f.get("machine")) != null) {
            MachineType m = Values.choice(e, "machine", p, Values.words(MachineType.class));
            machine = m != null ? m : machine;
        }
        String cpuModel = null;
        if ((e = f.get("cpu")) != null) {
            cpuModel = Values.matching(e, "cpu", p, CPU_MODEL,
                    "a QEMU CPU model name such as host, max or EPYC-v4 (letters, digits, '.', '_', '-'); "
                            + "put CPU flags in extra-args");
        }
        Accel accel = settings.accel();
        YamlNode.Entry accelEntry = f.get("accel");
        if (accelEntry != null) {
            Accel a = Values.choice(accelEntry, "accel", p, Values.words(Accel.class));
            accel = a != null ? a : accel;
        }
        if (accel == Accel.KVM && !host.kvmUsable()) {
            String where = accelEntry != null ? "accel is kvm" : "accel is kvm (the default from the daemon settings)";
            p.error(accelEntry != null ? accelEntry.value().location() : YamlNode.Location.FILE, "accel",
                    where + " but KVM is unavailable: " + host.kvmProblem()
                            + "; set 'accel: tcg' or 'accel: auto' to run without it");
        }

        Firmware firmware = firmware(f);

        Path kernel = null;
        Path initrd = null;
        String append = null;
        if ((e = f.get("kernel")) != null) {
            kernel = existingFile(e, "kernel", "give the path of a kernel image (bzImage)");
        }
        if ((e = f.get("initrd")) != null) {
            initrd = existingFile(e, "initrd", "give the path of an initramfs image");
            if (f.get("kernel") == null) {
                p.error(e.keyLocation(), "initrd", "needs kernel; an initrd is only used with direct kernel boot");
            }
        }
        if ((e = f.get("append")) != null) {
            append = Values.string(e, "append", p);
            if (f.get("kernel") == null) {
                p.error(e.keyLocation(), "append", "needs kernel; a kernel command line is only used with direct kernel boot");
            }
        }

        List<Disk> disks = disks(f.get("disks"), machine);
        List<Network> networks = networks(f.get("networks"), name);
        Display display = display(f.get("display"));
        Devices devices = devices(f.get("devices"));

        boolean guestAgent = true;
        if ((e = f.get("guest-agent")) != null) {
            Boolean b = Values.bool(e, "guest-agent", p);
            guestAgent = b != null ? b : guestAgent;
        }
        boolean autostart = true;
        if ((e = f.get("autostart")) != null) {
            Boolean b = Values.bool(e, "autostart", p);
            autostart = b != null ? b : autostart;
        }
        List<String> dependsOn = dependsOn(f.get("depends-on"), name);
        RestartPolicy restart = VmDefinition.DEFAULT_RESTART;
        if ((e = f.get("restart")) != null) {
            RestartPolicy r = restartPolicy(e);
            restart = r != null ? r : restart;
        }
        Duration restartDelay = duration(f, "restart-delay", VmDefinition.DEFAULT_RESTART_DELAY, Duration.ZERO);
        Duration restartMaxDelay = duration(f, "restart-max-delay", VmDefinition.DEFAULT_RESTART_MAX_DELAY, Duration.ZERO);
        if (restartMaxDelay.compareTo(restartDelay) < 0) {
            YamlNode.Entry at = f.get("restart-max-delay") != null ? f.get("restart-max-delay") : f.get("restart-delay");
            p.error(at.value().location(), at == f.get("restart-delay") ? "restart-delay" : "restart-max-delay",
                    "restart-max-delay (" + human(restartMaxDelay) + ") is shorter than restart-delay ("
                            + human(restartDelay) + "); make restart-max-delay at least restart-delay");
        }
        int restartSteps = integer(f, "restart-steps", VmDefinition.DEFAULT_RESTART_STEPS, 0, 100);
        int burst = integer(f, "start-limit-burst", VmDefinition.DEFAULT_START_LIMIT_BURST, 1, 10000);
        Duration interval = duration(f, "start-limit-interval", VmDefinition.DEFAULT_START_LIMIT_INTERVAL, Duration.ofSeconds(1));
        Duration stopTimeout = duration(f, "stop-timeout", VmDefinition.DEFAULT_STOP_TIMEOUT, Duration.ofSeconds(1));
        HangAction hang = HangAction.REPORT;
        if ((e = f.get("hang-action")) != null) {
            HangAction h = Values.choice(e, "hang-action", p, Values.words(HangAction.class));
            hang = h != null ? h : hang;
        }
        HangAction guestHang = HangAction.REPORT;
        if ((e = f.get("guest-hang-action")) != null) {
            HangAction h = Values.choice(e, "guest-hang-action", p, Values.words(HangAction.class));
            guestHang = h != null ? h : guestHang;
        }
        Duration guestHangAfter = duration(f, "guest-hang-after", VmDefinition.DEFAULT_GUEST_HANG_AFTER,
                Duration.ofSeconds(1));
        ReadyWhen readyWhen = readyWhen(f.get("ready-when"));
        Duration readyTimeout = duration(f, "ready-timeout", ReadyWhen.DEFAULT_TIMEOUT, Duration.ofSeconds(1));
        ApplyChanges apply = ApplyChanges.MANUAL;
        if ((e = f.get("apply-changes")) != null) {
            ApplyChanges a = Values.choice(e, "apply-changes", p, Values.words(ApplyChanges.class));
            apply = a != null ? a : apply;
        }
        List<String> extraArgs = extraArgs(f.get("extra-args"));
        Placement placement = placement(f.get("placement"));
        boolean failover = false;
        YamlNode.Entry failoverEntry = f.get("failover");
        if (failoverEntry != null) {
            Boolean b = Values.bool(failoverEntry, "failover", p);
            failover = b != null && b;
        }
        if (failover) {
            for (int i = 0; i < disks.size(); i++) {
                Disk d = disks.get(i);
                if (!d.shared() && !d.readonly()) {
                    p.error(failoverEntry.value().location(), "failover", "disks[" + i + "] (" + d.file() + ") is"
                            + " neither shared nor read-only, so another host could not start this VM from it; put it"
                            + " on shared storage and set 'shared: true' on it, make it readonly, or set failover:"
                            + " false");
                }
            }
        }
        f.finish();

        if (name != null) {
            VmPaths paths = settings.pathsFor(name);
            socketLength(paths.qmpSocket(), "QMP");
            socketLength(paths.consoleSocket(), "console");
            if (guestAgent) {
                socketLength(paths.agentSocket(), "guest agent");
            }
        }
        if (p.hasErrors() || name == null) {
            return null;
        }
        return new VmDefinition(name, file, description, memory, cpus, machine, cpuModel, accel, firmware,
                kernel, initrd, append, disks, networks, display, devices, guestAgent, autostart, dependsOn, restart,
                restartDelay, restartMaxDelay, restartSteps, burst, interval, stopTimeout, hang, guestHang, guestHangAfter,
                readyWhen, readyTimeout, apply, extraArgs, placement, failover);
    }

    /** {@code placement:} allowed hosts and anti-affinity groups. */
    private Placement placement(YamlNode.Entry e) {
        if (e == null) {
            return Placement.ANY;
        }
        if (!(e.value() instanceof YamlNode.Mapping m)) {
            p.error(e.value().location(), "placement", "expected a mapping (hosts: [h1, h2], anti-affinity: [web]), got "
                    + e.value().describe());
            return Placement.ANY;
        }
        Fields f = new Fields(m, "placement", p, PLACEMENT_KEYS);
        List<String> hosts = words(f.get("hosts"), "placement.hosts", ClusterSettings.HOST,
                "a host name: lower-case letters, digits and '-'");
        List<String> groups = words(f.get("anti-affinity"), "placement.anti-affinity", GROUP,
                "a group name: lower-case letters, digits, '_', '.' and '-'");
        f.finish();
        return new Placement(hosts, groups);
    }

    /** A list of names (or one name), each matching {@code pattern}, none twice. */
    private List<String> words(YamlNode.Entry e, String key, Pattern pattern, String rule) {
        List<String> out = new ArrayList<>();
        if (e == null) {
            return out;
        }
        List<YamlNode> items = e.value() instanceof YamlNode.Sequence seq ? seq.items() : List.of(e.value());
        for (int i = 0; i < items.size(); i++) {
            YamlNode item = items.get(i);
            String path = e.value() instanceof YamlNode.Sequence ? key + "[" + i + "]" : key;
            String n = Values.matching(new YamlNode.Entry(key, e.keyLocation(), item), path, p, pattern, rule);
            if (n == null) {
                continue;
            }
            if (out.contains(n)) {
                p.error(item.location(), path, "'" + n + "' is listed twice; list it once");
            } else {
                out.add(n);
            }
        }
        return out;
    }

    private CpuTopology cpus(YamlNode.Entry e) {
        if (e.value() instanceof YamlNode.Scalar) {
            Integer n = Values.integer(e, "cpus", p, 1, 255);
            return n == null ? null : CpuTopology.of(n);
        }
        if (!(e.value() instanceof YamlNode.Mapping m)) {
            p.error(e.value().location(), "cpus", "expected a count such as 2, or a mapping with sockets, cores and threads");
            return null;
        }
        Fields f = new Fields(m, "cpus", p, CPU_KEYS);
        Integer count = optionalInt(f, "count", 1, 255);
        Integer sockets = optionalInt(f, "sockets", 1, 255);
        Integer cores = optionalInt(f, "cores", 1, 255);
        Integer threads = optionalInt(f, "threads", 1, 255);
        f.finish();
        boolean anyLayout = f.get("sockets") != null || f.get("cores") != null || f.get("threads") != null;
        if (!anyLayout) {
            if (f.get("count") == null) {
                p.error(m.location(), "cpus", "give count, or sockets, cores and threads");
                return null;
            }
            return count == null ? null : CpuTopology.of(count);
        }
        if (sockets == null && f.get("sockets") != null || cores == null && f.get("cores") != null
                || threads == null && f.get("threads") != null || count == null && f.get("count") != null) {
            return null;
        }
        int s = sockets == null ? 1 : sockets;
        int c = cores == null ? 1 : cores;
        int t = threads == null ? 1 : threads;
        int product = s * c * t;
        if (product > 255) {
            p.error(m.location(), "cpus", "sockets x cores x threads is " + product + "; at most 255 CPUs are supported");
            return null;
        }
        if (count != null && count != product) {
            p.error(f.get("count").value().location(), "cpus.count", "is " + count + " but sockets x cores x threads is "
                    + product + "; make them agree or leave out count");
            return null;
        }
        return new CpuTopology(product, s, c, t);
    }

    private Firmware firmware(Fields f) {
        YamlNode.Entry e = f.get("firmware");
        FirmwareType type = FirmwareType.BIOS;
        if (e != null) {
            FirmwareType t = Values.choice(e, "firmware", p, Values.words(FirmwareType.class));
            type = t != null ? t : type;
        }
        YamlNode.Entry code = f.get("uefi-code");
        YamlNode.Entry vars = f.get("uefi-vars-template");
        if (type != FirmwareType.UEFI) {
            for (YamlNode.Entry unused : new YamlNode.Entry[] {code, vars}) {
                if (unused != null) {
                    p.error(unused.keyLocation(), unused.key(), "only used with 'firmware: uefi'; remove it or set firmware: uefi");
                }
            }
            return Firmware.BIOS;
        }
        Path codePath = code != null ? Values.path(code, "uefi-code", p, base) : DEFAULT_OVMF_CODE;
        Path varsPath = vars != null ? Values.path(vars, "uefi-vars-template", p, base) : DEFAULT_OVMF_VARS;
        checkFile(codePath, code != null ? code.value().location() : e.value().location(),
                code != null ? "uefi-code" : "firmware",
                "the UEFI firmware", "install the ovmf package or set uefi-code");
        checkFile(varsPath, vars != null ? vars.value().location() : e.value().location(),
                vars != null ? "uefi-vars-template" : "firmware",
                "the UEFI variable store template", "install the ovmf package or set uefi-vars-template");
        return new Firmware(FirmwareType.UEFI, codePath, varsPath);
    }

    private List<Disk> disks(YamlNode.Entry e, MachineType machine) {
        List<Disk> disks = new ArrayList<>();
        if (e == null) {
            return disks;
        }
        if (!(e.value() instanceof YamlNode.Sequence seq)) {
            p.error(e.value().location(), "disks", "expected a list of disks (- file: ...), got " + e.value().describe());
            return disks;
        }
        Map<Integer, String> bootOrders = new HashMap<>();
        int ide = 0;
        for (int i = 0; i < seq.items().size(); i++) {
            YamlNode item = seq.items().get(i);
            String path = "disks[" + i + "]";
            if (!(item instanceof YamlNode.Mapping m)) {
                p.error(item.location(), path, "expected a disk mapping (file: ..., format: ...), got " + item.describe());
                continue;
            }
            Fields f = new Fields(m, path, p, DISK_KEYS);
            int before = p.errors().size();
            YamlNode.Entry x;
            DiskMedia media = DiskMedia.DISK;
            if ((x = f.get("media")) != null) {
                DiskMedia v = Values.choice(x, f.keyPath("media"), p, Values.words(DiskMedia.class));
                media = v != null ? v : media;
            }
            boolean cdrom = media == DiskMedia.CDROM;
            Path file = null;
            if ((x = f.get("file")) != null) {
                file = existingFile(x, f.keyPath("file"), "create the image (qemu-img create) or fix the path");
            } else if (!cdrom) {
                p.error(m.location(), f.keyPath("file"), "missing; every disk needs a file (only a cdrom may be empty)");
            }
            DiskFormat format = cdrom ? DiskFormat.RAW : DiskFormat.QCOW2;
            if ((x = f.get("format")) != null) {
                DiskFormat v = Values.choice(x, f.keyPath("format"), p, Values.words(DiskFormat.class));
                format = v != null ? v : format;
            }
            DiskInterface iface = cdrom ? DiskInterface.IDE : DiskInterface.VIRTIO;
            YamlNode.Entry ifaceEntry = f.get("interface");
            if (ifaceEntry != null) {
                DiskInterface v = Values.choice(ifaceEntry, f.keyPath("interface"), p, Values.words(DiskInterface.class));
                iface = v != null ? v : iface;
            }
            if (cdrom && (iface == DiskInterface.VIRTIO || iface == DiskInterface.NVME)) {
                p.error(ifaceEntry.value().location(), f.keyPath("interface"),
                        "a cdrom needs interface ide or scsi, not " + iface.name().toLowerCase(Locale.ROOT));
            }
            DiskCache cache = DiskCache.WRITEBACK;
            if ((x = f.get("cache")) != null) {
                DiskCache v = Values.choice(x, f.keyPath("cache"), p, Values.words(DiskCache.class));
                cache = v != null ? v : cache;
            }
            DiskAio aio = DiskAio.THREADS;
            if ((x = f.get("aio")) != null) {
                DiskAio v = Values.choice(x, f.keyPath("aio"), p, Values.words(DiskAio.class, DiskAio::qemuName));
                aio = v != null ? v : aio;
                if (aio == DiskAio.NATIVE && !cache.direct()) {
                    p.error(x.value().location(), f.keyPath("aio"), "native needs a cache mode that bypasses the host cache; "
                            + "set cache: none or cache: directsync, or use aio: threads");
                }
            }
            boolean discard = false;
            if ((x = f.get("discard")) != null) {
                Boolean b = Values.bool(x, f.keyPath("discard"), p);
                discard = b != null && b;
            }
            boolean readonly = cdrom;
            if ((x = f.get("readonly")) != null) {
                Boolean b = Values.bool(x, f.keyPath("readonly"), p);
                readonly = cdrom || (b != null && b);
                if (b != null && b && !cdrom && iface == DiskInterface.IDE) {
                    p.error(x.value().location(), f.keyPath("readonly"),
                            "an ide hard disk cannot be read-only in QEMU; use interface virtio or scsi");
                }
            }
            String serial = null;
            if ((x = f.get("serial")) != null) {
                serial = Values.matching(x, f.keyPath("serial"), p, SERIAL,
                        "1 to 20 letters, digits, '.', '_', ':' or '-'");
            }
            Integer bootOrder = null;
            if ((x = f.get("boot-order")) != null) {
                bootOrder = Values.integer(x, f.keyPath("boot-order"), p, 1, 999);
                if (bootOrder != null) {
                    String other = bootOrders.putIfAbsent(bootOrder, path);
                    if (other != null) {
                        p.error(x.value().location(), f.keyPath("boot-order"),
                                bootOrder + " is already used by " + other + "; give each disk its own boot-order");
                    }
                }
            }
            boolean shared = false;
            if ((x = f.get("shared")) != null) {
                Boolean b = Values.bool(x, f.keyPath("shared"), p);
                shared = b != null && b;
            }
            f.finish();
            if (iface == DiskInterface.IDE) {
                ide++;
                int max = machine == MachineType.Q35 ? 6 : 4;
                if (ide == max + 1) {
                    p.error(m.location(), path, "machine " + machine.qemuName() + " has room for " + max
                            + " ide drives; use interface scsi or virtio for the others");
                }
            }
            if (p.errors().size() == before) {
                disks.add(new Disk(file, format, iface, media, cache, aio, discard, readonly, serial, bootOrder, shared));
            }
        }
        return disks;
    }

    private List<Network> networks(YamlNode.Entry e, String vmName) {
        List<Network> nets = new ArrayList<>();
        if (e == null) {
            return nets;
        }
        if (!(e.value() instanceof YamlNode.Sequence seq)) {
            p.error(e.value().location(), "networks", "expected a list of networks (- type: user), got " + e.value().describe());
            return nets;
        }
        Map<String, String> macs = new HashMap<>();
        Set<String> forwards = new HashSet<>();
        for (int i = 0; i < seq.items().size(); i++) {
            YamlNode item = seq.items().get(i);
            String path = "networks[" + i + "]";
            if (!(item instanceof YamlNode.Mapping m)) {
                p.error(item.location(), path, "expected a network mapping (type: user), got " + item.describe());
                continue;
            }
            Fields f = new Fields(m, path, p, NET_KEYS);
            int before = p.errors().size();
            YamlNode.Entry x;
            NetworkType type = NetworkType.USER;
            if ((x = f.get("type")) != null) {
                NetworkType t = Values.choice(x, f.keyPath("type"), p, Values.words(NetworkType.class));
                type = t != null ? t : type;
            }
            NicModel model = NicModel.VIRTIO;
            if ((x = f.get("model")) != null) {
                NicModel v = Values.choice(x, f.keyPath("model"), p, Values.words(NicModel.class));
                model = v != null ? v : model;
            }
            String mac = null;
            boolean derived = false;
            if ((x = f.get("mac")) != null) {
                mac = Values.matching(x, f.keyPath("mac"), p, MAC, "six hex pairs separated by ':', such as 52:54:00:12:34:56");
                if (mac != null) {
                    mac = mac.toLowerCase(Locale.ROOT);
                    if ((Integer.parseInt(mac.substring(0, 2), 16) & 1) != 0) {
                        p.error(x.value().location(), f.keyPath("mac"), mac + " is a multicast address; "
                                + "the first byte must be even, for example 52:54:00:...");
                        mac = null;
                    }
                }
            } else if (vmName != null) {
                mac = MacAddresses.derive(vmName, i);
                derived = true;
            }
            if (mac != null) {
                String other = macs.putIfAbsent(mac, path);
                if (other != null) {
                    p.error(x != null ? x.value().location() : m.location(), f.keyPath("mac"),
                            mac + " is already used by " + other + "; give each network its own mac");
                }
            }
            String ifname = null;
            if ((x = f.get("ifname")) != null) {
                ifname = Values.matching(x, f.keyPath("ifname"), p, IFNAME,
                        "a host interface name: 1 to 15 letters, digits, '.', '_' or '-'");
                if (type != NetworkType.TAP) {
                    p.error(x.keyLocation(), f.keyPath("ifname"), "only used with type: tap");
                }
            }
            String bridge = null;
            if ((x = f.get("bridge")) != null) {
                bridge = Values.matching(x, f.keyPath("bridge"), p, IFNAME,
                        "a host bridge name: 1 to 15 letters, digits, '.', '_' or '-'");
                if (type != NetworkType.BRIDGE) {
                    p.error(x.keyLocation(), f.keyPath("bridge"), "only used with type: bridge");
                }
            } else if (type == NetworkType.BRIDGE) {
                p.error(m.location(), f.keyPath("bridge"), "missing; type: bridge needs the name of a host bridge such as br0");
            }
            String helper = null;
            if ((x = f.get("helper")) != null) {
                Path h = existingFile(x, f.keyPath("helper"), "install qemu-system-common or fix the path");
                helper = h != null ? h.toString() : null;
                if (type != NetworkType.BRIDGE) {
                    p.error(x.keyLocation(), f.keyPath("helper"), "only used with type: bridge");
                }
            } else if (type == NetworkType.BRIDGE) {
                helper = DEFAULT_BRIDGE_HELPER;
                checkFile(Path.of(helper), m.location(), f.keyPath("helper"), "the bridge helper",
                        "install qemu-system-common or set helper");
            }
            List<PortForward> fwd = new ArrayList<>();
            if ((x = f.get("forwards")) != null) {
                if (type != NetworkType.USER) {
                    p.error(x.keyLocation(), f.keyPath("forwards"), "only used with type: user; a tap or bridge network "
                            + "reaches the guest directly");
                } else {
                    fwd = forwards(x, f.keyPath("forwards"), forwards);
                }
            }
            f.finish();
            if (p.errors().size() == before && mac != null) {
                nets.add(new Network(type, model, mac, derived, ifname, bridge, helper, fwd));
            }
        }
        return nets;
    }

    private List<PortForward> forwards(YamlNode.Entry e, String path, Set<String> seen) {
        List<PortForward> out = new ArrayList<>();
        if (!(e.value() instanceof YamlNode.Sequence seq)) {
            p.error(e.value().location(), path, "expected a list of forwards (- host-port: 2222, guest-port: 22)");
            return out;
        }
        for (int i = 0; i < seq.items().size(); i++) {
            YamlNode item = seq.items().get(i);
            String ip = path + "[" + i + "]";
            if (!(item instanceof YamlNode.Mapping m)) {
                p.error(item.location(), ip, "expected a mapping (host-port: 2222, guest-port: 22), got " + item.describe());
                continue;
            }
            Fields f = new Fields(m, ip, p, FORWARD_KEYS);
            YamlNode.Entry x;
            PortForward.Protocol proto = PortForward.Protocol.TCP;
            if ((x = f.get("protocol")) != null) {
                PortForward.Protocol v = Values.choice(x, f.keyPath("protocol"), p, Values.words(PortForward.Protocol.class));
                proto = v != null ? v : proto;
            }
            String addr = "127.0.0.1";
            if ((x = f.get("host-address")) != null) {
                String a = Values.matching(x, f.keyPath("host-address"), p, IPV4,
                        "an IPv4 address such as 127.0.0.1 (loopback) or 0.0.0.0 (all interfaces)");
                addr = a != null ? a : addr;
            }
            Integer host = null;
            Integer guest = null;
            if ((x = f.get("host-port")) != null) {
                host = Values.integer(x, f.keyPath("host-port"), p, 1, 65535);
            } else {
                p.error(m.location(), f.keyPath("host-port"), "missing; give the host port to listen on");
            }
            if ((x = f.get("guest-port")) != null) {
                guest = Values.integer(x, f.keyPath("guest-port"), p, 1, 65535);
            } else {
                p.error(m.location(), f.keyPath("guest-port"), "missing; give the guest port to forward to");
            }
            f.finish();
            if (host != null && guest != null) {
                String key = proto + " " + addr + ":" + host;
                if (!seen.add(key)) {
                    p.error(m.location(), ip, proto.name().toLowerCase(Locale.ROOT) + " host port " + addr + ":" + host
                            + " is forwarded twice; each host port can forward to one place");
                } else {
                    out.add(new PortForward(proto, addr, host, guest));
                }
            }
        }
        return out;
    }

    private Display display(YamlNode.Entry e) {
        if (e == null) {
            return Display.NONE;
        }
        Map<String, DisplayType> words = Values.words(DisplayType.class);
        if (e.value() instanceof YamlNode.Scalar) {
            DisplayType t = Values.choice(e, "display", p, words);
            return t == DisplayType.VNC ? new Display(DisplayType.VNC, "127.0.0.1", 0) : Display.NONE;
        }
        if (!(e.value() instanceof YamlNode.Mapping m)) {
            p.error(e.value().location(), "display", "expected none, vnc, or a mapping (type: vnc, listen: ..., port: ...)");
            return Display.NONE;
        }
        Fields f = new Fields(m, "display", p, DISPLAY_KEYS);
        YamlNode.Entry x;
        DisplayType type = DisplayType.VNC;
        if ((x = f.get("type")) != null) {
            DisplayType t = Values.choice(x, "display.type", p, words);
            type = t != null ? t : type;
        }
        String listen = "127.0.0.1";
        if ((x = f.get("listen")) != null) {
            String l = Values.string(x, "display.listen", p);
            if (l != null && !IPV4.matcher(l).matches() && !IPV6.matcher(l).matches()) {
                p.error(x.value().location(), "display.listen", "'" + Values.printable(l)
                        + "' is not an IP address; give one such as 127.0.0.1, 0.0.0.0 or ::1");
            } else if (l != null) {
                listen = l;
            }
        }
        int port = 0;
        if ((x = f.get("port")) != null) {
            Integer n = Values.integer(x, "display.port", p, 5900, 65535);
            port = n != null ? n : 0;
        }
        f.finish();
        if (type == DisplayType.NONE) {
            for (String k : List.of("listen", "port")) {
                if (f.get(k) != null) {
                    p.error(f.get(k).keyLocation(), "display." + k, "only used with type: vnc");
                }
            }
            return Display.NONE;
        }
        return new Display(type, listen, port);
    }

    private ReadyWhen readyWhen(YamlNode.Entry e) {
        String rule = "expected agent, {serial: REGEX} or {tcp: HOST:PORT}";
        if (e == null) {
            return null;
        }
        if (e.value() instanceof YamlNode.Scalar s) {
            if (s.text().equals("agent")) {
                return new ReadyWhen.Agent();
            }
            p.error(s.location(), "ready-when", rule + ", got '" + Values.printable(s.text()) + "'");
            return null;
        }
        if (!(e.value() instanceof YamlNode.Mapping m) || m.entries().size() != 1) {
            p.error(e.value().location(), "ready-when", rule + " (exactly one of them)");
            return null;
        }
        Fields f = new Fields(m, "ready-when", p, READY_KEYS);
        YamlNode.Entry x;
        ReadyWhen out = null;
        if ((x = f.get("serial")) != null) {
            String re = Values.string(x, "ready-when.serial", p);
            if (re != null) {
                try {
                    Pattern.compile(re);
                    out = new ReadyWhen.Serial(re);
                } catch (java.util.regex.PatternSyntaxException bad) {
                    p.error(x.value().location(), "ready-when.serial", "not a regular expression: "
                            + bad.getDescription() + " at index " + bad.getIndex());
                }
            }
        } else if ((x = f.get("tcp")) != null) {
            String hp = Values.matching(x, "ready-when.tcp", p, HOST_PORT, "HOST:PORT, e.g. 127.0.0.1:8080");
            if (hp != null) {
                int colon = hp.lastIndexOf(':');
                int port = Integer.parseInt(hp.substring(colon + 1));
                String host = hp.substring(0, colon).replace("[", "").replace("]", "");
                if (port < 1 || port > 65535) {
                    p.error(x.value().location(), "ready-when.tcp", "port " + port + " is not in 1..65535");
                } else {
                    out = new ReadyWhen.Tcp(host, port);
                }
            }
        }
        f.finish();
        return out;
    }

    private Devices devices(YamlNode.Entry e) {
        if (e == null) {
            return Devices.DEFAULTS;
        }
        if (!(e.value() instanceof YamlNode.Mapping m)) {
            p.error(e.value().location(), "devices", "expected a mapping (pvpanic: true, watchdog: ..., virtio-rng: true)");
            return Devices.DEFAULTS;
        }
        Fields f = new Fields(m, "devices", p, DEVICE_KEYS);
        YamlNode.Entry x;
        boolean pvpanic = true;
        if ((x = f.get("pvpanic")) != null) {
            Boolean b = Values.bool(x, "devices.pvpanic", p);
            pvpanic = b != null ? b : pvpanic;
        }
        boolean rng = false;
        if ((x = f.get("virtio-rng")) != null) {
            Boolean b = Values.bool(x, "devices.virtio-rng", p);
            rng = b != null ? b : rng;
        }
        Watchdog watchdog = null;
        if ((x = f.get("watchdog")) != null) {
            if (x.value() instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.BOOLEAN) {
                watchdog = Boolean.parseBoolean(s.text()) ? new Watchdog(WatchdogModel.I6300ESB, WatchdogAction.RESET) : null;
            } else if (x.value() instanceof YamlNode.Mapping wm) {
                Fields w = new Fields(wm, "devices.watchdog", p, WATCHDOG_KEYS);
                WatchdogModel model = WatchdogModel.I6300ESB;
                WatchdogAction action = WatchdogAction.RESET;
                YamlNode.Entry y;
                if ((y = w.get("model")) != null) {
                    WatchdogModel v = Values.choice(y, "devices.watchdog.model", p, Values.words(WatchdogModel.class));
                    model = v != null ? v : model;
                }
                if ((y = w.get("action")) != null) {
                    WatchdogAction v = Values.choice(y, "devices.watchdog.action", p, Values.words(WatchdogAction.class));
                    action = v != null ? v : action;
                }
                w.finish();
                watchdog = new Watchdog(model, action);
            } else {
                p.error(x.value().location(), "devices.watchdog",
                        "expected true, false, or a mapping (model: i6300esb, action: reset), got " + x.value().describe());
            }
        }
        f.finish();
        return new Devices(pvpanic, watchdog, rng);
    }

    private List<String> dependsOn(YamlNode.Entry e, String self) {
        List<String> out = new ArrayList<>();
        if (e == null) {
            return out;
        }
        List<YamlNode> items = e.value() instanceof YamlNode.Sequence seq ? seq.items() : List.of(e.value());
        for (int i = 0; i < items.size(); i++) {
            YamlNode item = items.get(i);
            String path = e.value() instanceof YamlNode.Sequence ? "depends-on[" + i + "]" : "depends-on";
            YamlNode.Entry fake = new YamlNode.Entry("depends-on", e.keyLocation(), item);
            String n = Values.matching(fake, path, p, NAME, "a VM name (" + NAME_RULE + ")");
            if (n == null) {
                continue;
            }
            if (n.equals(self)) {
                p.error(item.location(), path, "a VM cannot depend on itself; remove '" + n + "'");
            } else if (out.contains(n)) {
                p.error(item.location(), path, "'" + n + "' is listed twice; list it once");
            } else {
                out.add(n);
                locations.put("depends-on:" + n, item.location());
            }
        }
        return out;
    }

    private RestartPolicy restartPolicy(YamlNode.Entry e) {
        // YAML 1.1 readers take a bare 'no' for false; accept that spelling as the policy 'no'.
        if (e.value() instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.BOOLEAN && s.text().equals("false")) {
            return RestartPolicy.NO;
        }
        return Values.choice(e, "restart", p, Values.words(RestartPolicy.class));
    }

    private List<String> extraArgs(YamlNode.Entry e) {
        List<String> out = new ArrayList<>();
        if (e == null) {
            return out;
        }
        if (!(e.value() instanceof YamlNode.Sequence seq)) {
            p.error(e.value().location(), "extra-args", "expected a list of arguments, one per item (- -device - virtio-tablet)");
            return out;
        }
        for (int i = 0; i < seq.items().size(); i++) {
            String s = Values.string(seq.items().get(i), "extra-args[" + i + "]", p, false);
            if (s != null) {
                out.add(s);
            }
        }
        if (!out.isEmpty()) {
            p.warning(e.keyLocation(), "extra-args", "passed to QEMU as given; qsup does not check them, "
                    + "so a mistake shows only when the VM starts");
        }
        return out;
    }

    private Duration duration(Fields f, String key, Duration dflt, Duration min) {
        YamlNode.Entry e = f.get(key);
        if (e == null) {
            return dflt;
        }
        Duration d = Values.duration(e, key, p);
        if (d == null) {
            return dflt;
        }
        if (d.compareTo(min) < 0) {
            p.error(e.value().location(), key, "must be at least " + human(min));
            return dflt;
        }
        return d;
    }

    private int integer(Fields f, String key, int dflt, int min, int max) {
        YamlNode.Entry e = f.get(key);
        if (e == null) {
            return dflt;
        }
        Integer v = Values.integer(e, key, p, min, max);
        return v != null ? v : dflt;
    }

    private Integer optionalInt(Fields f, String key, int min, int max) {
        YamlNode.Entry e = f.get(key);
        return e == null ? null : Values.integer(e, f.keyPath(key), p, min, max);
    }

    private Path existingFile(YamlNode.Entry e, String keyPath, String hint) {
        Path path = Values.path(e, keyPath, p, base);
        if (path != null) {
            checkFile(path, e.value().location(), keyPath, "file", hint);
        }
        return path;
    }

    private void checkFile(Path path, YamlNode.Location at, String keyPath, String what, String hint) {
        if (path == null) {
            return;
        }
        String problem = host.files().problem(path);
        if (problem != null) {
            p.error(at, keyPath, what + " " + path + " " + problem + "; " + hint);
        }
    }

    private void socketLength(Path socket, String what) {
        int len = socket.toString().getBytes(StandardCharsets.UTF_8).length;
        if (len > DaemonSettings.MAX_SOCKET_PATH_BYTES) {
            p.error(locations.getOrDefault("name", YamlNode.Location.FILE), "name", "the " + what + " socket path "
                    + socket + " is " + len + " bytes long, over the unix socket limit of "
                    + DaemonSettings.MAX_SOCKET_PATH_BYTES + "; use a shorter VM name or a shorter run-dir in qsupd.yaml");
        }
    }

    static String human(Duration d) {
        long ms = d.toMillis();
        if (ms % 3_600_000 == 0 && ms > 0) {
            return ms / 3_600_000 + "h";
        }
        if (ms % 60_000 == 0 && ms > 0) {
            return ms / 60_000 + "m";
        }
        if (ms % 1000 == 0) {
            return ms / 1000 + "s";
        }
        return ms + "ms";
    }
}
