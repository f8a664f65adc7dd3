# bash completion for qsup: verbs, options, and VM names asked from the running qsupd.
_qsup_vms() {
    qsup ${1:+--socket "$1"} list --names 2>/dev/null
}

_qsup() {
    local cur prev verb i sock
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local verbs="list top status start stop restart kill pause resume reset reset-failed reload events qmp console logs argv validate help"

    verb=""
    sock=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) sock=${COMP_WORDS[i+1]}; ((i++)) ;;
            --file|--config|--timeout|--type|--repeat|--wait-event) ((i++)) ;;
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
        --socket|--daemon-socket|--file|--config)
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
            start|restart|kill|pause|resume|reset|reset-failed) opts="$opts --all --no-wait --allow-unpersisted" ;;
            stop) opts="$opts --all --no-wait --allow-unpersisted --force --timeout" ;;
            events) opts="$opts --follow --type" ;;
            console) opts="--help --socket" ;;
            logs) opts="--help --socket --follow --serial" ;;
            qmp) opts="--help --socket --daemon-socket --file --repeat --keep-going --events --wait-event --timeout --compact" ;;
            argv) opts="--help --config --shell --foreground --json" ;;
            validate) opts="--help --config --json" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    case $verb in
        status|start|stop|restart|kill|pause|resume|reset|reset-failed|events|console|logs|qmp)
            COMPREPLY=($(compgen -W "$(_qsup_vms "$sock")" -- "$cur")) ;;
        argv|validate)
            COMPREPLY=($(compgen -W "$(_qsup_vms "$sock")" -f -- "$cur")) ;;
    esac
}
complete -F _qsup qsup
