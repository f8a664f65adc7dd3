package io.qsup.config;

import io.qsup.qemu.HostFacts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Loads VM definitions: one file, or a whole folder of {@code *.yaml} files with the checks that span files
 * (unique names, depends-on targets and cycles). This is the one place definitions are validated.
 */
public final class ConfigLoader {
    private ConfigLoader() {}

    /** Loads one definition file; its depends-on names are not checked against other files. */
    public static VmDefinition loadFile(Path file, DaemonSettings settings, HostFacts host) throws ConfigException {
        VmParser.Parsed parsed = parseFile(file.toAbsolutePath().normalize(), settings, host);
        if (parsed.vm() == null) {
            throw new ConfigException(parsed.problems().errors());
        }
        return parsed.vm();
    }

    /** Warnings (such as unchecked extra-args) of one definition file; empty when the file has errors. */
    public static List<ConfigError> warnings(Path file, DaemonSettings settings, HostFacts host) {
        return parseFile(file.toAbsolutePath().normalize(), settings, host).problems().warnings();
    }

    /** Loads every {@code *.yaml} file in {@code vmsDir}; never throws for bad files, it reports them. */
    public static LoadResult loadDirectory(Path vmsDir, DaemonSettings settings, HostFacts host) {
        Path dir = vmsDir.toAbsolutePath().normalize();
        List<ConfigError> warnings = new ArrayList<>();
        Map<Path, List<ConfigError>> errorsByFile = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.sorted().toList();
        } catch (IOException e) {
            ConfigError err = new ConfigError(dir, 0, 0, "", "cannot list the definitions folder: " + describe(e)
                    + "; create it or set vms-dir in qsupd.yaml");
            return new LoadResult(Map.of(), List.of(err), List.of(), Map.of(dir, List.of(err)));
        }
        List<Path> definitions = new ArrayList<>();
        for (Path f : files) {
            String n = f.getFileName().toString();
            if (n.startsWith(".")) {
                continue; // editor swap and backup files
            }
            if (n.endsWith(".yml")) {
                warnings.add(new ConfigError(f, 0, 0, "", "ignored: only files ending in .yaml are read; rename it to "
                        + n.substring(0, n.length() - 4) + ".yaml"));
                continue;
            }
            if (!n.endsWith(".yaml")) {
                continue;
            }
            definitions.add(f);
        }
        // each file on its own, on every core (a parse is a few ms of cold code at qsupd's start); in file order
        List<VmParser.Parsed> parsed = definitions.parallelStream().map(f -> parseFile(f, settings, host)).toList();
        return across(parsed, warnings, errorsByFile);
    }

    /**
     * Loads definitions given as text, each with the file it came from (for {@code qsup apply} and the definitions a
     * cluster keeps): the same checks as a folder gets, names unique across them, depends-on only among them.
     */
    public static LoadResult loadTexts(Map<Path, String> texts, DaemonSettings settings, HostFacts host) {
        List<VmParser.Parsed> parsed = new ArrayList<>();
        for (Map.Entry<Path, String> t : new TreeMap<>(texts).entrySet()) {
            parsed.add(VmParser.parse(t.getKey().toAbsolutePath().normalize(), t.getValue(), settings, host));
        }
        return across(parsed, new ArrayList<>(), new TreeMap<>());
    }

    /** The checks that span files, then the result. */
    private static LoadResult across(List<VmParser.Parsed> parsed, List<ConfigError> warnings,
            Map<Path, List<ConfigError>> errorsByFile) {
        Map<Path, List<ConfigError>> extra = new HashMap<>();
        Map<String, List<VmParser.Parsed>> byName = new LinkedHashMap<>();
        for (VmParser.Parsed p : parsed) {
            if (p.name() != null) {
                byName.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(p);
            }
        }
        // A duplicated name breaks every file that claims it: which one wins must not depend on file order.
        Set<Path> duplicated = new HashSet<>();
        for (Map.Entry<String, List<VmParser.Parsed>> e : byName.entrySet()) {
            List<VmParser.Parsed> claims = e.getValue();
            if (claims.size() < 2) {
                continue;
            }
            for (VmParser.Parsed p : claims) {
                List<String> others = claims.stream().filter(o -> o != p).map(o -> o.problems().file().toString()).toList();
                YamlNode.Location at = p.locations().getOrDefault("name", YamlNode.Location.FILE);
                extra.computeIfAbsent(p.problems().file(), k -> new ArrayList<>()).add(new ConfigError(
                        p.problems().file(), at.line(), at.column(), "name", "VM name '" + e.getKey()
                                + "' is also used by " + String.join(", ", others)
                                + "; VM names must be unique: rename one or set name:"));
                duplicated.add(p.problems().file());
            }
        }

        Map<String, VmDefinition> valid = new TreeMap<>();
        for (VmParser.Parsed p : parsed) {
            if (p.vm() != null && !duplicated.contains(p.problems().file())) {
                valid.put(p.vm().name(), p.vm());
            }
        }
        Map<String, VmParser.Parsed> parsedByName = new HashMap<>();
        for (VmParser.Parsed p : parsed) {
            if (p.vm() != null) {
                parsedByName.put(p.vm().name(), p);
            }
        }
        // depends-on may name any VM with a file in the folder, even a broken one: the broken file is reported on its own.
        for (VmDefinition vm : valid.values()) {
            VmParser.Parsed p = parsedByName.get(vm.name());
            for (String dep : vm.dependsOn()) {
                if (!byName.containsKey(dep)) {
                    YamlNode.Location at = p.locations().getOrDefault("depends-on:" + dep, YamlNode.Location.FILE);
                    String hint = Suggestions.closest(dep, byName.keySet());
                    extra.computeIfAbsent(vm.sourceFile(), k -> new ArrayList<>()).add(new ConfigError(vm.sourceFile(),
                            at.line(), at.column(), "depends-on", "no definition gives the name '" + dep + "'"
                                    + (hint != null ? "; did you mean '" + hint + "'?" : "; add its definition or remove it")));
                }
            }
        }
        for (List<String> cycle : cycles(valid)) {
            String chain = String.join(" -> ", cycle) + " -> " + cycle.get(0);
            for (String n : cycle) {
                VmDefinition vm = valid.get(n);
                String next = cycle.get((cycle.indexOf(n) + 1) % cycle.size());
                YamlNode.Location at = parsedByName.get(n).locations().getOrDefault("depends-on:" + next, YamlNode.Location.FILE);
                extra.computeIfAbsent(vm.sourceFile(), k -> new ArrayList<>()).add(new ConfigError(vm.sourceFile(),
                        at.line(), at.column(), "depends-on", "dependency cycle " + chain + "; remove one of these depends-on entries"));
            }
        }

        List<ConfigError> errors = new ArrayList<>();
        for (VmParser.Parsed p : parsed) {
            Path f = p.problems().file();
            extra.getOrDefault(f, List.of()).forEach(p.problems()::add);
            if (p.problems().hasErrors()) {
                List<ConfigError> s = p.problems().errors();
                errorsByFile.put(f, s);
                errors.addAll(s);
                if (p.vm() != null) {
                    valid.remove(p.vm().name());
                }
            }
            warnings.addAll(p.problems().warnings());
        }
        return new LoadResult(Collections.unmodifiableMap(valid), List.copyOf(errors), List.copyOf(warnings),
                Collections.unmodifiableMap(errorsByFile));
    }

    private static VmParser.Parsed parseFile(Path file, DaemonSettings settings, HostFacts host) {
        String text;
        try {
            text = ConfigFile.read(file, "a VM definition");
        } catch (ConfigFile.Refused e) {
            return failed(file, settings, host, e.getMessage());
        }
        return VmParser.parse(file, text, settings, host);
    }

    private static VmParser.Parsed failed(Path file, DaemonSettings settings, HostFacts host, String message) {
        Problems p = new Problems(file);
        p.error(YamlNode.Location.FILE, "", message);
        return new VmParser.Parsed(null, null, p, Map.of());
    }

    /** Every dependency cycle among the VMs, each listed once starting from its smallest name. */
    static List<List<String>> cycles(Map<String, VmDefinition> vms) {
        List<List<String>> out = new ArrayList<>();
        Set<String> reported = new HashSet<>();
        Map<String, Integer> state = new HashMap<>(); // 1 = on the current path, 2 = done
        List<String> stack = new ArrayList<>();
        for (String start : vms.keySet()) {
            visit(start, vms, state, stack, out, reported);
        }
        return out;
    }

    private static void visit(String n, Map<String, VmDefinition> vms, Map<String, Integer> state, List<String> stack,
            List<List<String>> out, Set<String> reported) {
        Integer s = state.get(n);
        if (s != null && s == 2) {
            return;
        }
        if (s != null && s == 1) {
            List<String> cycle = new ArrayList<>(stack.subList(stack.indexOf(n), stack.size()));
            int min = cycle.indexOf(cycle.stream().min(Comparator.naturalOrder()).orElseThrow());
            Collections.rotate(cycle, -min);
            if (cycle.stream().noneMatch(reported::contains)) {
                reported.addAll(cycle);
                out.add(cycle);
            }
            return;
        }
        VmDefinition vm = vms.get(n);
        if (vm == null) {
            return;
        }
        state.put(n, 1);
        stack.add(n);
        for (String d : vm.dependsOn()) {
            visit(d, vms, state, stack, out, reported);
        }
        stack.remove(stack.size() - 1);
        state.put(n, 2);
    }

    private static String describe(IOException e) {
        return e instanceof java.nio.file.NoSuchFileException ? "it does not exist"
                : e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                : String.valueOf(e.getMessage());
    }
}
