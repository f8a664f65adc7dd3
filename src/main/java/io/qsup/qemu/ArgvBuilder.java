package io.qsup.qemu;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.config.Accel;
import io.qsup.config.DaemonSettings;
import io.qsup.config.Disk;
import io.qsup.config.DiskFormat;
import io.qsup.config.DiskInterface;
import io.qsup.config.DisplayType;
import io.qsup.config.MachineType;
import io.qsup.config.Network;
import io.qsup.config.NetworkType;
import io.qsup.config.PortForward;
import io.qsup.config.VmDefinition;
import io.qsup.config.VmPaths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Builds the QEMU command line of a VM: a pure function of definition, settings and host facts, with no I/O and no
 * shell. {@code -device}, {@code -blockdev}, {@code -netdev} and {@code -object} use QEMU's JSON syntax, as libvirt
 * does, so file names and serials never meet QEMU's comma rules; the remaining option strings go through
 * {@link QemuOptions}, which escapes every value.
 *
 * <p>The sandbox: {@code -daemonize} forks and calls {@code setsid()} after QEMU installs its seccomp filter, so
 * with {@code spawn=deny} or {@code elevateprivileges=deny} a daemonized QEMU dies of SIGSYS at start (measured
 * with QEMU 7.2). The daemonized command line therefore denies only obsolete syscalls and resource control; the
 * foreground one ({@link #buildForeground}) denies everything, except spawning and privilege changes for children
 * when a bridge network needs the setuid {@code qemu-bridge-helper}.
 */
public final class ArgvBuilder {
    /** jackson-core's writer, not an {@code ObjectMapper}, whose first construction costs qsupd's start ~80 ms. */
    private static final JsonFactory JSON = new JsonFactory();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private ArgvBuilder() {}

    /** The command line qsupd launches: QEMU daemonizes and writes its pidfile. */
    public static List<String> build(VmDefinition vm, DaemonSettings settings, HostFacts host) {
        return new Run(vm, settings, host, true).argv();
    }

    /**
     * The command line of a live-migration target: {@link #build}'s, plus {@code -incoming defer} at the end, so QEMU
     * starts with the same devices, waits without running guest code, and takes the VM's state once told where to
     * listen ({@code migrate-incoming}). The two must match argument for argument, or the migration fails.
     */
    public static List<String> buildIncoming(VmDefinition vm, DaemonSettings settings, HostFacts host) {
        List<String> argv = new ArrayList<>(build(vm, settings, host));
        argv.add("-incoming");
        argv.add("defer");
        return List.copyOf(argv);
    }

    /** The same command line without {@code -daemonize}, for running QEMU as a direct child. */
    public static List<String> buildForeground(VmDefinition vm, DaemonSettings settings, HostFacts host) {
        return new Run(vm, settings, host, false).argv();
    }

    /** Whether {@code accel} means KVM on this host ({@code auto} does when KVM is usable). */
    public static boolean usesKvm(Accel accel, HostFacts host) {
        return accel == Accel.KVM || (accel == Accel.AUTO && host.kvmUsable());
    }

    /** One command line being built. */
    private static final class Run {
        private final VmDefinition vm;
        private final DaemonSettings settings;
        private final HostFacts host;
        private final boolean daemonize;
        private final VmPaths paths;
        private final List<String> a = new ArrayList<>();

        Run(VmDefinition vm, DaemonSettings settings, HostFacts host, boolean daemonize) {
            this.vm = vm;
            this.settings = settings;
            this.host = host;
            this.daemonize = daemonize;
            this.paths = settings.pathsFor(vm.name());
        }

        List<String> argv() {
            boolean kvm = usesKvm(vm.accel(), host);
            a.add(settings.qemuBinary());
            add("-name", QemuOptions.pairs().add("guest", vm.name()).toString());
            a.add("-nodefaults");
            a.add("-no-user-config");
            add("-msg", "timestamp=on");
            if (daemonize) {
                a.add("-daemonize");
            }
            add("-pidfile", paths.pidFile().toString());
            if (host.sandboxSupported()) {
                add("-sandbox", sandbox());
            }
            QemuOptions machine = QemuOptions.of(vm.machine().qemuName());
            if (vm.firmware().isUefi()) {
                machine.add("pflash0", "uefi-code-format").add("pflash1", "uefi-vars-format");
            }
            add("-machine", machine.toString());
            add("-accel", kvm ? "kvm" : "tcg");
            add("-cpu", QemuOptions.escape(vm.cpuModel() != null ? vm.cpuModel() : kvm ? "host" : "max"));
            add("-m", (vm.memoryBytes() >> 20) + "M");
            QemuOptions smp = QemuOptions.of(Integer.toString(vm.cpus().count()));
            if (vm.cpus().hasLayout()) {
                smp.add("sockets", vm.cpus().sockets()).add("cores", vm.cpus().cores()).add("threads", vm.cpus().threads());
            }
            add("-smp", smp.toString());

            add("-chardev", QemuOptions.of("socket").add("id", "qmp").add("path", paths.qmpSocket().toString())
                    .add("server", "on").add("wait", "off").toString());
            add("-mon", "chardev=qmp,mode=control");
            add("-chardev", QemuOptions.of("socket").add("id", "serial0").add("path", paths.consoleSocket().toString())
                    .add("server", "on").add("wait", "off")
                    .add("logfile", paths.serialLog().toString()).add("logappend", "on").toString());
            add("-device", json(device("isa-serial", "serial0").put("chardev", "serial0")));

            add("-display", "none");
            if (vm.display().type() == DisplayType.VNC) {
                add("-vnc", vnc());
                add("-device", json(device("VGA", "video0")));
            }

            if (vm.firmware().isUefi()) {
                blockdev("uefi-code", vm.firmware().code().toString(), DiskFormat.RAW, true, null);
                blockdev("uefi-vars", paths.efiVars().toString(), DiskFormat.RAW, false, null);
            }
            if (vm.kernel() != null) {
                add("-kernel", vm.kernel().toString());
                if (vm.initrd() != null) {
                    add("-initrd", vm.initrd().toString());
                }
                if (vm.append() != null) {
                    add("-append", vm.append());
                }
            }
            disks();
            networks();
            devices();
            guestAgent();
            a.addAll(vm.extraArgs());
            return List.copyOf(a);
        }

        private String sandbox() {
            if (daemonize) {
                return "on,obsolete=deny,resourcecontrol=deny";
            }
            boolean bridge = vm.networks().stream().anyMatch(n -> n.type() == NetworkType.BRIDGE);
            return bridge
                    ? "on,obsolete=deny,elevateprivileges=children,spawn=allow,resourcecontrol=deny"
                    : "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
        }

        private String vnc() {
            String listen = vm.display().listen();
            String addr = listen.contains(":") ? "[" + listen + "]" : listen;
            int port = vm.display().port();
            // Without a port, take the first free display from :0 (5900) up to :99.
            String value = port == 0 ? addr + ":0" : addr + ":" + (port - 5900);
            QemuOptions o = QemuOptions.of(value);
            if (port == 0) {
                o.add("to", 99);
            }
            return o.toString();
        }

        private void disks() {
            boolean scsi = vm.disks().stream().anyMatch(d -> d.iface() == DiskInterface.SCSI);
            if (scsi) {
                add("-device", json(device("virtio-scsi-pci", "scsi0")));
            }
            int scsiId = 0;
            int ide = 0;
            for (int i = 0; i < vm.disks().size(); i++) {
                Disk d = vm.disks().get(i);
                String id = "disk" + i;
                String node = null;
                if (d.file() != null) {
                    node = blockdev(id, d.file().toString(), d.format(), d.readonly(), d);
                }
                ObjectNode dev = switch (d.iface()) {
                    case VIRTIO -> device("virtio-blk-pci", id);
                    case NVME -> device("nvme", id).put("serial", d.serial() != null ? d.serial() : id);
                    case SCSI -> device(d.isCdrom() ? "scsi-cd" : "scsi-hd", id)
                            .put("bus", "scsi0.0").put("channel", 0).put("scsi-id", scsiId++).put("lun", 0);
                    case IDE -> {
                        int k = ide++;
                        ObjectNode n = device(d.isCdrom() ? "ide-cd" : "ide-hd", id);
                        if (vm.machine() == MachineType.Q35) {
                            // q35's AHCI controller has six buses with one unit each.
                            n.put("bus", "ide." + k);
                        } else {
                            n.put("bus", "ide." + (k / 2)).put("unit", k % 2);
                        }
                        yield n;
                    }
                };
                if (node != null) {
                    dev.put("drive", node);
                }
                if (d.serial() != null && d.iface() != DiskInterface.NVME) {
                    dev.put("serial", d.serial());
                }
                if (d.bootOrder() != null) {
                    dev.put("bootindex", d.bootOrder());
                }
                if (node != null && !d.cache().writeCache()) {
                    dev.put("write-cache", "off");
                }
                add("-device", json(dev));
            }
        }

        /** Adds a protocol node and a format node on top of it; returns the format node's name. */
        private String blockdev(String id, String file, DiskFormat format, boolean readonly, Disk d) {
            ObjectNode proto = NODES.objectNode()
                    .put("driver", "file")
                    .put("filename", file)
                    .put("node-name", id + "-file");
            ObjectNode fmt = NODES.objectNode()
                    .put("driver", format.name().toLowerCase(Locale.ROOT))
                    .put("node-name", id + "-format")
                    .put("file", id + "-file");
            if (d != null) {
                proto.put("aio", d.aio().qemuName());
                for (ObjectNode n : List.of(proto, fmt)) {
                    ObjectNode cache = n.putObject("cache");
                    cache.put("direct", d.cache().direct()).put("no-flush", d.cache().noFlush());
                    if (d.discard()) {
                        n.put("discard", "unmap");
                    }
                }
            }
            proto.put("read-only", readonly);
            fmt.put("read-only", readonly);
            add("-blockdev", json(proto));
            add("-blockdev", json(fmt));
            return id + "-format";
        }

        private void networks() {
            for (int i = 0; i < vm.networks().size(); i++) {
                Network n = vm.networks().get(i);
                String id = "net" + i;
                ObjectNode netdev = NODES.objectNode().put("type", n.type().name().toLowerCase(Locale.ROOT)).put("id", id);
                switch (n.type()) {
                    case USER -> {
                        if (!n.forwards().isEmpty()) {
                            ArrayNode fwd = netdev.putArray("hostfwd");
                            for (PortForward f : n.forwards()) {
                                fwd.addObject().put("str", f.protocol().name().toLowerCase(Locale.ROOT) + ":"
                                        + f.hostAddress() + ":" + f.hostPort() + "-:" + f.guestPort());
                            }
                        }
                    }
                    case TAP -> {
                        if (n.ifname() != null) {
                            netdev.put("ifname", n.ifname());
                        }
                        // qsup configures host networking itself; QEMU never runs /etc/qemu-ifup.
                        netdev.put("script", "no").put("downscript", "no");
                    }
                    case BRIDGE -> netdev.put("br", n.bridge()).put("helper", n.helper());
                }
                add("-netdev", json(netdev));
                add("-device", json(device(n.model().qemuDriver(), "nic" + i).put("netdev", id).put("mac", n.mac())));
            }
        }

        private void devices() {
            if (vm.devices().pvpanic()) {
                add("-device", json(device("pvpanic", "pvpanic0")));
            }
            if (vm.devices().watchdog() != null) {
                add("-device", json(device(vm.devices().watchdog().model().qemuDriver(), "watchdog0")));
                add("-action", "watchdog=" + vm.devices().watchdog().action().qemuName());
            }
            if (vm.devices().virtioRng()) {
                add("-object", json(NODES.objectNode()
                        .put("qom-type", "rng-random").put("id", "rng0").put("filename", "/dev/urandom")));
                add("-device", json(device("virtio-rng-pci", "rng0-dev").put("rng", "rng0")));
            }
        }

        /** The guest agent's channel: a virtio-serial port named as qemu-ga expects, on a socket qsupd connects to. */
        private void guestAgent() {
            if (!vm.guestAgent()) {
                return;
            }
            add("-chardev", QemuOptions.of("socket").add("id", "agent0").add("path", paths.agentSocket().toString())
                    .add("server", "on").add("wait", "off").toString());
            add("-device", json(device("virtio-serial-pci", "vserial0")));
            add("-device", json(device("virtserialport", "agent0-port").put("bus", "vserial0.0")
                    .put("chardev", "agent0").put("name", "org.qemu.guest_agent.0")));
        }

        private static ObjectNode device(String driver, String id) {
            return NODES.objectNode().put("driver", driver).put("id", id);
        }

        private void add(String option, String value) {
            a.add(option);
            a.add(value);
        }

        private static String json(ObjectNode node) {
            java.io.StringWriter out = new java.io.StringWriter();
            try (JsonGenerator g = JSON.createGenerator(out)) {
                write(g, node);
            } catch (java.io.IOException e) {
                throw new IllegalStateException("a tree of plain values always serializes", e);
            }
            return out.toString();
        }

        /** The values argv's JSON options hold: objects, lists, strings, integers and flags. */
        private static void write(JsonGenerator g, com.fasterxml.jackson.databind.JsonNode n) throws java.io.IOException {
            switch (n.getNodeType()) {
                case OBJECT -> {
                    g.writeStartObject();
                    for (var e : n.properties()) {
                        g.writeFieldName(e.getKey());
                        write(g, e.getValue());
                    }
                    g.writeEndObject();
                }
                case ARRAY -> {
                    g.writeStartArray();
                    for (var e : n) {
                        write(g, e);
                    }
                    g.writeEndArray();
                }
                case STRING -> g.writeString(n.textValue());
                case NUMBER -> {
                    if (!n.canConvertToExactIntegral()) {
                        throw new IllegalStateException("argv JSON holds integers only, not " + n);
                    }
                    g.writeNumber(n.longValue());
                }
                case BOOLEAN -> g.writeBoolean(n.booleanValue());
                case NULL -> g.writeNull();
                default -> throw new IllegalStateException("no JSON for a " + n.getNodeType() + " node in argv");
            }
        }
    }
}
