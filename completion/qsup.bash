# bash completion for qsup: verbs, options, VM names asked from the running qsupd, and for 'qsup qmp' QMP command
# names, argument keys and enum values from the schema the VM's QEMU served last (qsup's cache; no connection).
_qsup_vms() {
    qsup ${1:+--socket "$1"} list --names 2>/dev/null
}

# The words of 'qsup qmp' after its target: asks 'qsup qmp --complete LINE', which answers with whole words
# (node-name=, driver=qcow2); bash splits words at '=', so the part before the word being completed is cut off.
_qsup_qmp() {
    local line=${COMP_LINE:0:COMP_POINT}
    local -a w
    read -ra w <<< "$line"
    [[ $line == *[[:space:]] ]] && w+=("")
    local token=${w[${#w[@]}-1]}
    local i target="" positional=0 seen=""
    for ((i = 0; i < ${#w[@]} - 1; i++)); do
        if [ -z "$seen" ]; then
            [ "${w[i]}" = qmp ] && seen=1
            continue
        fi
        case ${w[i]} in
            --socket) target=socket; ((i++)) ;;
            --daemon-socket|--cache-dir|--file|-f|--repeat|--wait-event|--timeout|--describe|--history) ((i++)) ;;
            -*) ;;
            *) ((positional++)) ;;
        esac
    done
    if [ -z "$target" ] && [ "$positional" -eq 0 ]; then
        COMPREPLY=($(compgen -W "$(_qsup_vms)" -- "$cur"))
        return
    fi
    local keep=${token%"$cur"}
    local IFS=$'\n'
    COMPREPLY=($(qsup qmp --complete "$line" 2>/dev/null))
    COMPREPLY=("${COMPREPLY[@]#"$keep"}")
    if [ ${#COMPREPLY[@]} -eq 1 ] && [[ ${COMPREPLY[0]} == *[=.] ]]; then
        compopt -o nospace 2>/dev/null
    fi
}

_qsup() {
    local cur prev verb i sock
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local verbs="list top status start stop restart kill pause resume reset reset-failed reload apply delete hosts migrate drain events qmp console logs argv validate help"

    verb=""
    sock=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) sock=${COMP_WORDS[i+1]}; ((i++)) ;;
            --file|--config|--timeout|--type|--repeat|--wait-event|--daemon-socket|--cache-dir|--history|--describe) ((i++)) ;;
            -*) ;;
            *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done
    # a --socket after the verb is the daemon's too, except for qmp, where --daemon-socket is
    for ((; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) [ "$verb" = qmp ] || sock=${COMP_WORDS[i+1]}; ((i++)) ;;
            --daemon-socket) sock=${COMP_WORDS[i+1]}; ((i++)) ;;
        esac
    done

    case $prev in
        --socket|--daemon-socket|--file|--config|--cache-dir|--history)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
    esac

    if [ -z "$verb" ]; then
        COMPREPLY=($(compgen -W "$verbs --help --version --socket --json" -- "$cur"))
        return
    fi

    if [[ $cur == -* ]]; then
        local opts="--help --socket --json"
        case $verb in
            list) opts="$opts --names" ;;
            top) opts="$opts --interval --sort --iterations" ;;
            start) opts="$opts --all --no-wait --allow-unpersisted --wait-ready" ;;
            restart|kill|pause|resume|reset|reset-failed) opts="$opts --all --no-wait --allow-unpersisted" ;;
            stop) opts="$opts --all --no-wait --allow-unpersisted --force --timeout" ;;
            events) opts="$opts --follow --type" ;;
            console) opts="--help --socket" ;;
            logs) opts="--help --socket --follow --serial" ;;
            qmp) opts="--help --socket --daemon-socket --file --repeat --keep-going --events --wait-event --timeout --compact --no-check --describe --list --verbose --cache-dir --history" ;;
            argv) opts="--help --config --shell --foreground --json" ;;
            validate) opts="--help --config --json" ;;
            migrate) opts="$opts --to --timeout --bandwidth --no-wait" ;;
            drain) opts="$opts --undo --timeout" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    case $verb in
        qmp)
            _qsup_qmp ;;
        status|start|stop|restart|kill|pause|resume|reset|reset-failed|events|console|logs|delete|migrate)
            COMPREPLY=($(compgen -W "$(_qsup_vms "$sock")" -- "$cur")) ;;
        argv|validate)
            COMPREPLY=($(compgen -W "$(_qsup_vms "$sock")" -f -- "$cur")) ;;
        apply)
            COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}
complete -F _qsup qsup
